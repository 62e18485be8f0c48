package tenant_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/schema"
)

var (
	rolesCostTenants  = flag.String("rolescost.tenants", "1,20", "TestRolesCost: the tenant counts to measure at")
	rolesCostDuration = flag.Duration("rolescost.duration", 300*time.Millisecond, "TestRolesCost: how long each phase runs")
	rolesCostRounds   = flag.Int("rolescost.rounds", 1, "TestRolesCost: rounds of the two modes, taking turns")
)

// TestRolesCost measures what Config.Roles costs (BENCHMARKS.md, "Database-enforced
// isolation"): the one-query request (Manager.Run, one SELECT by id) for random
// tenants among N, 8 clients, on 4 connections, with the default (one pool) against
// per-tenant login roles (a warm set of 4 role connections), taking turns, and the
// connections each opened. make test runs it small, as a check that it runs; make
// bench-roles at 1, 200 and 10,000 tenants.
func TestRolesCost(t *testing.T) {
	ctx := context.Background()
	counts := parseCounts(t, *rolesCostTenants)
	n := slices.Max(counts)
	roles := &schema.Roles{Secrets: [][]byte{roleSecret}}
	p, err := pool.New(ctx, testdb.URL(t), pool.WithMaxConns(4))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	mgr := func(r *schema.Roles) *tenant.Manager {
		m, err := tenant.New(ctx, tenant.Config{Pool: p, Migrations: oneTable, Roles: r, RoleConns: 4, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		t.Cleanup(m.Close)
		return m
	}
	plain, withRoles := mgr(nil), mgr(roles)
	names := make([]string, n)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range names {
		names[i] = fmt.Sprintf("rcost_%05d", i)
		g.Go(func() error { return withRoles.Provisioner().Ensure(gctx, names[i]) })
	}
	t.Cleanup(func() {
		admin := testdb.Pool(t)
		dropSchemas(admin, names)
		dropTenantRoles(t, admin)
	})
	require.NoError(t, g.Wait())
	t.Logf("%d tenants with their roles provisioned in %v", n, time.Since(start))

	for _, count := range counts {
		var ratios []float64
		var plainRate, rolesRate float64
		var plainOpened, rolesOpened int64
		for range *rolesCostRounds {
			opened := p.Stat().NewConnsCount()
			plainRate = rate(t, plain, names[:count])
			plainOpened += p.Stat().NewConnsCount() - opened
			opened = withRoles.RoleConnsOpened()
			rolesRate = rate(t, withRoles, names[:count])
			rolesOpened += withRoles.RoleConnsOpened() - opened
			ratios = append(ratios, rolesRate/plainRate)
		}
		slices.Sort(ratios)
		t.Logf("%d tenants: roles %.3gx the default (median of %d rounds; last %.0f against %.0f requests/s); connections opened: %d against %d",
			count, ratios[len(ratios)/2], len(ratios), rolesRate, plainRate, rolesOpened, plainOpened)
	}
}

// rate runs one-query requests for random tenants among names from 8 clients for
// -rolescost.duration, and returns the requests answered per second.
func rate(t *testing.T, mgr *tenant.Manager, names []string) float64 {
	t.Helper()
	return requestRate(t, 8, *rolesCostDuration, func(int) error {
		return readDoc(context.Background(), mgr, names[rand.IntN(len(names))], 1+rand.IntN(10))
	})
}

func parseCounts(t *testing.T, s string) []int {
	var counts []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		require.NoError(t, err)
		counts = append(counts, n)
	}
	return counts
}
