package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// affinityGroups hold the connections that serve transactions with
// Config.AffinityGroups: a pgxpool per group, made from the Manager's pool settings
// with a share of its MaxConns. A tenant's transactions go to its group, picked by
// its schema's OID, so a backend's catalog cache fills with about one group's share
// of the tenants instead of, in time, every tenant: the backends together hold each
// tenant's catalog data about once per connection of a group, not once per
// connection of the pool.
type affinityGroups struct {
	pools []*pgxpool.Pool
}

// newAffinityGroups makes n groups from p's settings, sharing p's MaxConns (at least
// one connection each) and its MinConns and MinIdleConns.
func newAffinityGroups(p *pgxpool.Pool, n int) (*affinityGroups, error) {
	base := p.Config()
	if n < 0 || n > int(base.MaxConns) {
		return nil, fmt.Errorf("tenant: Config.AffinityGroups %d: between 1 and the pool's MaxConns (%d), or 0 for none", n, base.MaxConns)
	}
	share := func(v int32) int32 { return v / int32(n) }
	a := &affinityGroups{}
	for range n {
		cfg := base.Copy()
		cfg.MaxConns = share(base.MaxConns)
		cfg.MinConns, cfg.MinIdleConns = share(base.MinConns), share(base.MinIdleConns)
		gp, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			a.close()
			return nil, err
		}
		a.pools = append(a.pools, gp)
	}
	return a, nil
}

// affinityPatience is how long a transaction waits for its group's connection before
// a group with an idle one serves it instead. Under an even load every group is about
// as busy as the others, and a wait of a few transactions keeps each tenant on its
// group's backends (falling back at once soon teaches every backend every tenant);
// a group held up by a busy tenant makes its transactions wait longer, and they move.
const affinityPatience = 5 * time.Millisecond

// acquire returns a connection of the tenant's group: at once when the group has one
// idle or room to open one (a new backend learns only its group's tenants), else the
// first to come free within affinityPatience. After that, one idle in another group
// (whose backend then learns the tenant too), else the first of its own group's to
// come free. An idle connection is acquired without a deadline: pgxpool pings one
// idle for a second within the acquire's deadline and closes it when the ping runs
// out, so a 5 ms deadline on a busy machine would close healthy connections. Hence
// a connection seen idle but taken by someone else first leaves the transaction
// waiting for that group, which soon frees one: the groups are all about as busy.
func (a *affinityGroups) acquire(ctx context.Context, b *binding) (*pgxpool.Conn, error) {
	g := a.group(b.oid)
	home := a.pools[g]
	if s := home.Stat(); s.IdleConns() > 0 || s.TotalConns() < s.MaxConns() {
		return home.Acquire(ctx)
	}
	if c, err := acquireWithin(ctx, home); !errors.Is(err, errImpatient) {
		return c, err
	}
	for i := 1; i < len(a.pools); i++ {
		if p := a.pools[(g+i)%len(a.pools)]; p.Stat().IdleConns() > 0 {
			return p.Acquire(ctx)
		}
	}
	return home.Acquire(ctx)
}

// errImpatient is acquireWithin's: no connection within affinityPatience.
var errImpatient = errors.New("tenant: no connection within the affinity patience")

// acquireWithin acquires a connection of p, whose connections are all in use, if one
// comes free within affinityPatience (just released: pgxpool does not ping it);
// errImpatient otherwise (ctx's own end and p's errors are returned as they are).
func acquireWithin(ctx context.Context, p *pgxpool.Pool) (*pgxpool.Conn, error) {
	wait, cancel := context.WithTimeoutCause(ctx, affinityPatience, errImpatient)
	defer cancel()
	c, err := p.Acquire(wait)
	if err != nil && ctx.Err() == nil && context.Cause(wait) == errImpatient {
		return nil, errImpatient
	}
	return c, err
}

// group is the tenant's group. Schemas' OIDs come in steps of however many objects a
// tenant's migrations make, so they are mixed (murmur3's finalizer) before the modulo:
// a step that is a multiple of the group count would put every tenant in one group.
func (a *affinityGroups) group(oid uint32) int {
	h := oid
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return int(h % uint32(len(a.pools)))
}

func (a *affinityGroups) close() {
	for _, p := range a.pools {
		p.Close()
	}
}

// errAffinityWithRoles refuses a Config with both: a tenant role's connections serve
// that tenant only, which is all affinity could do.
var errAffinityWithRoles = errors.New("tenant: Config.AffinityGroups has no use with Config.Roles: each tenant's role has connections of its own")
