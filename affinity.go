package tenant

import (
	"context"
	"errors"
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
	share := func(v int32) int32 { return v / int32(n) }
	a := &affinityGroups{}
	for range n {
		cfg := base.Copy()
		cfg.MaxConns = max(1, share(base.MaxConns))
		cfg.MinConns, cfg.MinIdleConns = min(share(base.MinConns), cfg.MaxConns), min(share(base.MinIdleConns), cfg.MaxConns)
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
// idle or room to open one, else when one comes free within affinityPatience. After
// that a group with an idle connection serves instead (its backend then learns the
// tenant too), or, with none idle, the transaction waits on for its own.
func (a *affinityGroups) acquire(ctx context.Context, b *binding) (*pgxpool.Conn, error) {
	g := a.group(b.oid)
	home := a.pools[g]
	if s := home.Stat(); s.IdleConns() > 0 || s.TotalConns() < s.MaxConns() {
		return home.Acquire(ctx)
	}
	wait, cancel := context.WithTimeout(ctx, affinityPatience)
	c, err := home.Acquire(wait)
	cancel()
	if err == nil || ctx.Err() != nil {
		return c, err
	}
	for i := 1; i < len(a.pools); i++ {
		if p := a.pools[(g+i)%len(a.pools)]; p.Stat().IdleConns() > 0 {
			return p.Acquire(ctx)
		}
	}
	return home.Acquire(ctx)
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
