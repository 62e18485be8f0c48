package tenant_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
)

// TestWarmConnectionPlansNothing: once a connection has served a tenant, the tenant's
// next transactions there plan nothing, whichever tenants ran in between. The
// server says when it plans: with log_planner_stats on, every plan sends the client a
// "PLANNER STATISTICS" message. A statement shared by the tenants and run under the
// tenant's search_path would be planned again at each change of tenant, since
// PostgreSQL replans a prepared statement when the search_path differs from its
// last: a cost that one-tenant traffic never shows.
func TestWarmConnectionPlansNothing(t *testing.T) {
	ctx := context.Background()
	var plans atomic.Int64
	p, err := pool.New(ctx, testdb.URL(t), pool.WithMaxConns(1), pool.WithConfig(func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["log_planner_stats"] = "on"
		c.ConnConfig.RuntimeParams["client_min_messages"] = "log"
		c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if strings.Contains(n.Message, "PLANNER STATISTICS") {
				plans.Add(1)
			}
		}
	}))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	mgr, err := tenant.New(ctx, tenant.Config{Pool: p, Migrations: oneTable, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(mgr.Close)
	names := []string{"plans_a", "plans_b", "plans_c"}
	for _, name := range names {
		require.NoError(t, mgr.Provisioner().Ensure(ctx, name))
	}

	// Warm: each statement prepared on the one connection, and past the five custom
	// plans PostgreSQL makes before it settles on a generic one.
	for range 7 {
		for i, name := range names {
			require.NoError(t, readDoc(ctx, mgr, name, 1+i))
		}
	}
	require.Positive(t, plans.Load(), "the control: warming up plans, and the server says so")

	plans.Store(0)
	for range 5 {
		for i, name := range names {
			require.NoError(t, readDoc(ctx, mgr, name, 1+i))
		}
	}
	assert.Zero(t, plans.Load(), "plans in 15 warm transactions of three tenants taking turns")

	plans.Store(0)
	for range 15 {
		require.NoError(t, readDoc(ctx, mgr, names[0], 1))
	}
	assert.Zero(t, plans.Load(), "plans in 15 warm transactions of one tenant")
}
