package tenant

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/schema"
)

// rolePools hold the connections of tenant roles (Config.Roles): a pgxpool per role,
// made on first use from the Manager's pool settings with the role's login, together
// at most max connections. A connection needed while all are open closes the least
// recently used idle one of another tenant, so the open ones are a warm set of the
// busiest tenants. Each pool opens nothing until asked, and one unused for a while with
// no connection is closed.
type rolePools struct {
	base  *pgxpool.Config
	prov  *schema.Provisioner
	slots chan struct{} // a token per network connection open: Config.RoleConns of them

	mu     sync.Mutex
	pools  map[uint32]*rolePool // by the tenant schema's OID, which names the role
	closed bool
}

type rolePool struct {
	*pgxpool.Pool
	role      string
	passwords []string     // newest first: a rotation in progress accepts either
	current   atomic.Int32 // the password logins use
	used      atomic.Int64 // when a request last asked for it (unix nanoseconds)
}

// unusedFor is how long a pool without connections stays before it is closed.
const unusedFor = time.Minute

// newRoleConns makes the rolePools of Config.Roles: on RolesDSN's server when set,
// with the pool's other settings.
func newRoleConns(p *pgxpool.Pool, prov *schema.Provisioner, cfg Config) (*rolePools, error) {
	base := p.Config()
	if cfg.RolesDSN != "" {
		cc, err := pgx.ParseConfig(cfg.RolesDSN)
		if err != nil {
			return nil, fmt.Errorf("tenant: RolesDSN: %w", err)
		}
		base.ConnConfig.Config = cc.Config
	}
	n := cfg.RoleConns
	if n <= 0 {
		n = int(base.MaxConns)
	}
	return &rolePools{base: base, prov: prov, slots: make(chan struct{}, n), pools: map[uint32]*rolePool{}}, nil
}

// acquire returns a connection of the tenant's role. A login refused for its password
// tries the older secrets (a rotation in progress); a pool closed as unused meanwhile
// is made again.
func (r *rolePools) acquire(ctx context.Context, b *binding) (*pgxpool.Conn, error) {
	for attempt := 0; ; attempt++ {
		p, err := r.pool(ctx, b)
		if err != nil {
			return nil, err
		}
		if attempt > len(p.passwords)+1 { // every password refused, or pools swept each time
			return nil, fmt.Errorf("tenant: no connection for the tenant's role %s", p.role)
		}
		current := p.current.Load()
		conn, err := p.Acquire(ctx)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return conn, nil
		case errors.As(err, &pgErr) && passwordRefused(pgErr) && len(p.passwords) > 1:
			p.current.CompareAndSwap(current, (current+1)%int32(len(p.passwords)))
		case err.Error() == "closed pool": // pgxpool's, unexported: swept meanwhile
		default:
			return nil, err
		}
	}
}

// roleRefused reports whether a login failed because the role does not exist or may
// not log in: 28000 from PostgreSQL, 08P01 "no such user" from PgBouncer.
func roleRefused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28000" || (pgErr.Code == "08P01" && strings.Contains(pgErr.Message, "no such user")))
}

// passwordRefused reports whether a login failed for its password: 28P01 from
// PostgreSQL; PgBouncer says 08P01, "SASL authentication failed" (SCRAM) or
// "password authentication failed".
func passwordRefused(err *pgconn.PgError) bool {
	return err.Code == "28P01" || (err.Code == "08P01" && strings.Contains(err.Message, "authentication failed"))
}

// pool returns the pool of b's tenant role, made if missing (the role's name and
// passwords are worked out then, not at every request); making one sweeps the pools
// unused and empty.
func (r *rolePools) pool(ctx context.Context, b *binding) (*rolePool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("tenant: the Manager is closed")
	}
	now := time.Now().UnixNano()
	if p := r.pools[b.oid]; p != nil {
		p.used.Store(now)
		return p, nil
	}
	role, passwords, _, err := r.prov.Role(ctx, schema.Tenant{Name: b.name, OID: b.oid})
	if err != nil {
		return nil, err
	}
	for oid, p := range r.pools {
		if now-p.used.Load() > int64(unusedFor) && p.Stat().TotalConns() == 0 {
			p.Close()
			delete(r.pools, oid)
		}
	}
	p := &rolePool{role: role, passwords: passwords}
	cfg := r.base.Copy()
	cfg.ConnConfig.User = role
	delete(cfg.ConnConfig.RuntimeParams, "role")
	cfg.MaxConns = int32(cap(r.slots))
	cfg.MinConns, cfg.MinIdleConns = 0, 0
	// The login is the role's whatever the application's BeforeConnect does (one that
	// fetches its own credentials would otherwise log in as the application), and a
	// connection that turns out to run as anyone else is refused.
	before, after := cfg.BeforeConnect, cfg.AfterConnect
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if before != nil {
			if err := before(ctx, cc); err != nil {
				return err
			}
		}
		cc.User, cc.Password = role, p.passwords[p.current.Load()]
		cc.DialFunc = r.dialer(cc.DialFunc, p)
		return nil
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		var session, current string
		if err := c.QueryRow(ctx, "SELECT session_user, current_user", pgx.QueryExecModeSimpleProtocol).Scan(&session, &current); err != nil {
			return err
		}
		if session != role || current != role {
			return fmt.Errorf("tenant: a connection for the role %s runs as %s (%s)", role, session, current)
		}
		if after != nil {
			return after(ctx, c)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	p.Pool = pool
	p.used.Store(now)
	r.pools[b.oid] = p
	return p, nil
}

// dialer wraps dial so that every network connection of a tenant role holds a token
// from the moment it is dialled until it closes: whatever ends it (a refused login, a
// failed AfterConnect, an acquire that gave up while the login went on, eviction,
// Close), the token comes back exactly once, and the roles never hold more than
// RoleConns connections.
func (r *rolePools) dialer(dial pgconn.DialFunc, p *rolePool) pgconn.DialFunc {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := r.take(ctx, p); err != nil {
			return nil, err
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			<-r.slots
			return nil, err
		}
		return &tokenConn{Conn: c, give: func() { <-r.slots }}, nil
	}
}

// tokenConn gives its token back when it closes, once.
type tokenConn struct {
	net.Conn
	once sync.Once
	give func()
}

func (c *tokenConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.give)
	return err
}

// take holds a token for a connection p is about to open, closing an idle connection
// of the least recently used other pool when none is free, and waiting (as long as
// ctx allows) while every connection is busy.
func (r *rolePools) take(ctx context.Context, p *rolePool) error {
	wait := 100 * time.Microsecond
	for {
		select {
		case r.slots <- struct{}{}:
			return nil
		default:
		}
		r.evict(ctx, p)
		select {
		case r.slots <- struct{}{}:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("tenant: waiting for a connection of the tenants' roles: %w", ctx.Err())
		case <-time.After(wait):
			wait = min(2*wait, 10*time.Millisecond)
		}
	}
}

// evict closes one idle connection of the least recently used pool other than p that
// has one; its token comes back as the pool destroys it.
func (r *rolePools) evict(ctx context.Context, p *rolePool) {
	r.mu.Lock()
	var victim *rolePool
	for _, q := range r.pools {
		if q != p && q.Stat().IdleConns() > 0 && (victim == nil || q.used.Load() < victim.used.Load()) {
			victim = q
		}
	}
	r.mu.Unlock()
	if victim == nil {
		return
	}
	idle := victim.AcquireAllIdle(ctx)
	for i, c := range idle {
		if i == 0 {
			_ = c.Conn().Close(ctx) // released closed: the pool destroys it
		}
		c.Release()
	}
}

// close closes every pool, and refuses to make more.
func (r *rolePools) close() {
	r.mu.Lock()
	pools := r.pools
	r.pools, r.closed = map[uint32]*rolePool{}, true
	r.mu.Unlock()
	for _, p := range pools {
		p.Close()
	}
}
