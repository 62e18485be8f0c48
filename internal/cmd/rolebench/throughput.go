package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/internal/bouncer"
)

// mode is one way of running a tenant's one-query transaction.
type mode interface {
	name() string
	// do runs the request for tenant, reading item id.
	do(ctx context.Context, tenant, id int) error
	// opened is the number of server connections opened so far.
	opened() int64
	close()
}

// request is the one-query transaction: BEGIN, the tenant's role (SET ROLE mode
// only), its search path, a SELECT by primary key, COMMIT, in one round trip.
func request(ctx context.Context, c *pgx.Conn, tenant, id int, setRole bool) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if setRole {
		b.Queue("SET LOCAL ROLE " + ident(roleName(tenant)))
	}
	b.Queue("SET LOCAL search_path TO " + ident(schemaName(tenant)))
	b.Queue("SELECT v FROM items WHERE id = $1", id)
	b.Queue("COMMIT")
	br := c.SendBatch(ctx, b)
	n := b.Len()
	for i := 0; i < n-2; i++ {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return err
		}
	}
	var v string
	if err := br.QueryRow().Scan(&v); err != nil {
		_ = br.Close()
		return err
	}
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return err
	}
	return br.Close()
}

// poolMode runs every tenant on one shared pool: the default (logged in as the
// schemas' owner) or SET LOCAL ROLE (logged in as app, a member of every tenant role).
type poolMode struct {
	label   string
	pool    *pgxpool.Pool
	setRole bool
}

func newPoolMode(ctx context.Context, label, url string, conns int, setRole bool) (*poolMode, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns, cfg.MinConns = int32(conns), int32(conns)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.ConnConfig.RuntimeParams["application_name"] = label
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Every connection open before the phase, as a long-running application's are.
	held := make([]*pgxpool.Conn, 0, conns)
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	for range conns {
		c, err := p.Acquire(ctx)
		if err != nil {
			p.Close()
			return nil, err
		}
		held = append(held, c)
	}
	return &poolMode{label: label, pool: p, setRole: setRole}, nil
}

func (m *poolMode) name() string  { return m.label }
func (m *poolMode) opened() int64 { return int64(m.pool.Stat().NewConnsCount()) }
func (m *poolMode) close()        { m.pool.Close() }
func (m *poolMode) do(ctx context.Context, tenant, id int) error {
	c, err := m.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return request(ctx, c.Conn(), tenant, id, m.setRole)
}

// loginMode logs in as each tenant's own role, through a warm set of connections:
// directly to PostgreSQL (the set bounds the server connections), or to PgBouncer (the
// set holds client connections; PgBouncer's max_db_connections bounds the server's).
type loginMode struct {
	label string
	set   *warmSet
	b     *bouncer.Bouncer // nil: direct
	base  int64            // server connections PgBouncer had opened before this mode
}

// newLoginMode makes a login mode whose connections, up to conns, log in on url
// (whose user it replaces with each tenant's role).
func newLoginMode(label, url string, conns int, b *bouncer.Bouncer) (*loginMode, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.RuntimeParams["application_name"] = label
	connect := func(ctx context.Context, tenant int) (*pgx.Conn, error) {
		c := cfg.Copy()
		c.User, c.Password = roleName(tenant), benchPassword
		return pgx.ConnectConfig(ctx, c)
	}
	m := &loginMode{label: label, set: newWarmSet(conns, connect), b: b}
	m.base = m.serverLogins()
	return m, nil
}

func (m *loginMode) name() string { return m.label }
func (m *loginMode) close()       { m.set.close(context.Background()) }
func (m *loginMode) do(ctx context.Context, tenant, id int) error {
	c, err := m.set.acquire(ctx, tenant)
	if err != nil {
		return err
	}
	err = request(ctx, c, tenant, id, false)
	m.set.release(ctx, tenant, c, err != nil)
	return err
}

func (m *loginMode) opened() int64 {
	if m.b != nil {
		return m.serverLogins() - m.base
	}
	_, misses, _ := m.set.stats()
	return misses
}

// serverLogins counts the server connections PgBouncer has opened, from its log.
func (m *loginMode) serverLogins() int64 {
	if m.b == nil {
		return 0
	}
	return int64(strings.Count(m.b.Log(), "new connection to server"))
}

// modeSpec makes a mode for one phase: each phase opens its own connections, named
// by application_name (PgBouncer passes the client's on to its server connection), so
// that the sampler counts that mode's backends alone, exiting ones included. users is
// a regular expression for more roles to count: PgBouncer's auth_user.
type modeSpec struct {
	label string
	users string
	make  func(ctx context.Context) (mode, error)
}

// result is one phase of load on one mode.
type result struct {
	requests int64
	elapsed  time.Duration
	opened   int64 // server connections opened during the phase
	peak     int   // most server connections seen at once
}

func (r result) rate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// load runs workers goroutines of requests on m for d, each for a tenant drawn at
// random among tenants, and samples the server's connections to database db.
func load(ctx context.Context, spec modeSpec, sampler *pgx.Conn, db string, workers, tenants int, d time.Duration) (result, error) {
	m, err := spec.make(ctx)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", spec.label, err)
	}
	defer m.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	before := m.opened()
	var requests atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := m.do(ctx, rng.IntN(tenants), 1+rng.IntN(10)); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s: %w", m.name(), err); cancel() })
					return
				}
				requests.Add(1)
			}
		}()
	}
	peak := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var n int
		if err := sampler.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND backend_type = 'client backend' AND (application_name = $2 OR usename ~ $3)`,
			db, spec.label, spec.users).Scan(&n); err == nil {
			peak = max(peak, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	return result{requests: requests.Load(), elapsed: time.Since(start), opened: m.opened() - before, peak: peak}, firstErr
}
