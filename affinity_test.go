package tenant_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenanttest"
)

// affinityTenants provisions tenants on e until each of the groups has at least
// perGroup of them, and returns them by group (its Manager has Config.AffinityGroups).
func affinityTenants(t *testing.T, e *env, groups, perGroup int) [][]string {
	t.Helper()
	ctx := context.Background()
	byGroup := make([][]string, groups)
	for i := 0; slices.ContainsFunc(byGroup, func(g []string) bool { return len(g) < perGroup }); i++ {
		require.Less(t, i, 20*groups*perGroup, "tenants keep landing in the same groups")
		name := newTenantName("aff")
		require.NoError(t, e.mgr.Provisioner().Ensure(ctx, name))
		t.Cleanup(func() { _, _ = e.admin.Exec(ctx, `DROP SCHEMA IF EXISTS "`+name+`" CASCADE`) })
		var oid uint32
		require.NoError(t, e.admin.QueryRow(ctx, "SELECT oid FROM pg_namespace WHERE nspname = $1", name).Scan(&oid))
		g := e.mgr.AffinityGroupOf(oid)
		byGroup[g] = append(byGroup[g], name)
	}
	return byGroup
}

// backendOf runs a transaction for name on mgr and returns its backend's PID.
func backendOf(ctx context.Context, mgr *tenant.Manager, name string) (uint32, error) {
	var pid uint32
	err := mgr.Run(ctx, name, func(ctx context.Context) error {
		return tenantctx.Session(ctx).QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid)
	})
	return pid, err
}

// With AffinityGroups a tenant's transactions run on its group's backends only, so a
// backend serves one group's tenants; without (the control: the same tenants, the same
// requests on a pool as large) one backend serves tenants of every group.
func TestAffinityKeepsTenantsOnTheirGroup(t *testing.T) {
	const groups = 2
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader, AffinityGroups: groups})
	byGroup := affinityTenants(t, e, groups, 3)
	control := newEnv(t, 4, tenant.Config{Resolver: byHeader})
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		mgr  *tenant.Manager
		kept bool // every backend served one group's tenants only
	}{
		{"affinity", e.mgr, true},
		{"control", control.mgr, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served := map[uint32]map[int]bool{} // backend → the groups whose tenants it served
			for round := range 5 {
				for g, names := range byGroup {
					for _, name := range names {
						pid, err := backendOf(ctx, tc.mgr, name)
						require.NoError(t, err, "round %d", round)
						if served[pid] == nil {
							served[pid] = map[int]bool{}
						}
						served[pid][g] = true
					}
				}
			}
			mixed := 0
			for _, gs := range served {
				if len(gs) > 1 {
					mixed++
				}
			}
			if tc.kept {
				assert.Zero(t, mixed, "backends that served tenants of more than one group: %v", served)
				assert.Len(t, served, groups, "sequential requests: a backend per group")
			} else {
				assert.Positive(t, mixed, "the control must mix groups, or the test shows nothing: %v", served)
			}
		})
	}
	var opened int64
	for _, p := range e.mgr.RequestPools() {
		assert.Equal(t, int32(2), p.Config().MaxConns, "each group has its share of the pool's 4")
		opened += p.Stat().NewConnsCount()
	}
	assert.Equal(t, int64(groups), opened)
}

// When a tenant's group has no connection to give, a group with an idle one serves
// it; when no group has one, it waits for its own.
func TestAffinityFallsBackUnderLoad(t *testing.T) {
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader, AffinityGroups: 2}) // a connection per group
	byGroup := affinityTenants(t, e, 2, 2)
	a, b, other := byGroup[0][0], byGroup[0][1], byGroup[1][0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	otherPID, err := backendOf(ctx, e.mgr, other)
	require.NoError(t, err)

	// hold runs a transaction for name that keeps its connection until release is
	// called (at the latest when the test ends, so that a failure does not hang it).
	hold := func(name string) (pid chan uint32, release func(), done chan error) {
		pid, done = make(chan uint32, 1), make(chan error, 1)
		released := make(chan struct{})
		release = sync.OnceFunc(func() { close(released) })
		t.Cleanup(release)
		go func() {
			done <- e.mgr.Run(ctx, name, func(ctx context.Context) error {
				var p uint32
				if err := tenantctx.Session(ctx).QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&p); err != nil {
					return err
				}
				pid <- p
				<-released
				return nil
			})
		}()
		return pid, release, done
	}

	aPID, releaseA, doneA := hold(a)
	heldPID := <-aPID
	require.NotEqual(t, otherPID, heldPID)
	pid, err := backendOf(ctx, e.mgr, b)
	require.NoError(t, err, "b's group is busy: the other group's idle connection serves it")
	assert.Equal(t, otherPID, pid)

	otherHeld, releaseOther, doneOther := hold(other)
	require.Equal(t, otherPID, <-otherHeld)
	got := make(chan uint32, 1)
	go func() {
		p, err := backendOf(ctx, e.mgr, b)
		assert.NoError(t, err)
		got <- p
	}()
	select {
	case p := <-got:
		t.Fatalf("every group is busy, yet b ran (on backend %d)", p)
	case <-time.After(200 * time.Millisecond):
	}
	releaseA()
	require.NoError(t, <-doneA)
	assert.Equal(t, heldPID, <-got, "b waited for its own group")
	releaseOther()
	require.NoError(t, <-doneOther)
}

// Groups need a connection each, and are no use with Roles (a tenant role's
// connections serve that tenant only).
func TestAffinityGroupsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  tenant.Config
		want string
	}{
		{"with Roles", tenant.Config{AffinityGroups: 2, Roles: &schema.Roles{Secrets: [][]byte{roleSecret}}}, "no use with Config.Roles"},
		{"more than connections", tenant.Config{AffinityGroups: 5}, "AffinityGroups 5: between 1 and the pool's MaxConns (4)"},
		{"negative", tenant.Config{AffinityGroups: -1}, "AffinityGroups -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DSN, tc.cfg.PoolOptions = testdb.URL(t), []pool.Option{pool.WithMaxConns(4)}
			_, err := tenant.New(context.Background(), tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// Each tenant's transactions go to one of four groups of connections, so each
// backend caches about a quarter of the tenants' catalog data.
func ExampleConfig_affinityGroups() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{DSN: tenanttest.DatabaseURL(), Migrations: exampleMigrations,
		AffinityGroups: 4})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_affinity"); err != nil {
		panic(err)
	}
	defer mgr.Drop(ctx, "ex_affinity")

	err = mgr.Run(ctx, "ex_affinity", func(ctx context.Context) error {
		var n int
		if err := tenantctx.Session(ctx).QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n); err != nil {
			return err
		}
		fmt.Println("notes:", n)
		return nil
	})
	fmt.Println(err)
	// Output:
	// notes: 0
	// <nil>
}
