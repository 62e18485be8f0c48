package tenant_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// backendMemorySQL reads the memory of the backend that runs it: every memory
// context's total (catalog caches, plans, everything). pg_log_backend_memory_contexts
// writes to the server log instead, which a test cannot read.
const backendMemorySQL = "SELECT pg_backend_pid(), (SELECT sum(total_bytes) FROM pg_backend_memory_contexts)::bigint"

// provisionTenants makes n tenants (appMigrations) in parallel, dropped after the test.
func provisionTenants(t testing.TB, e *env, prefix string, n int) []string {
	t.Helper()
	ctx := context.Background()
	names := make([]string, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range names {
		names[i] = newTenantName(prefix)
		g.Go(func() error { return e.mgr.Provisioner().Ensure(gctx, names[i]) })
	}
	t.Cleanup(func() {
		for _, name := range names {
			_, _ = e.admin.Exec(ctx, `DROP SCHEMA IF EXISTS "`+name+`" CASCADE`)
		}
	})
	require.NoError(t, g.Wait())
	return names
}

// backendUse is what requests saw of the backends that served them.
type backendUse struct {
	mu       sync.Mutex
	tenants  map[uint32]map[string]bool // distinct tenants each backend served
	maxBytes int64                      // the most memory a backend held at the end of a request
	minBytes int64                      // the least: a backend that served one tenant
}

func (u *backendUse) note(pid uint32, tenantName string, bytes int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tenants == nil {
		u.tenants = map[uint32]map[string]bool{}
	}
	if u.tenants[pid] == nil {
		u.tenants[pid] = map[string]bool{}
	}
	u.tenants[pid][tenantName] = true
	u.maxBytes = max(u.maxBytes, bytes)
	if u.minBytes == 0 || bytes < u.minBytes {
		u.minBytes = bytes
	}
}

// mostTenants is the most distinct tenants one backend served.
func (u *backendUse) mostTenants() int {
	most := 0
	for _, seen := range u.tenants {
		most = max(most, len(seen))
	}
	return most
}

// serveAll runs passes rounds of one request per tenant, from goroutines sharing
// the pool: each request adds an item and reads its tenant's item count (which must
// be exact: a retirement may lose nothing), its backend and that backend's memory.
func serveAll(t *testing.T, mgr *tenant.Manager, names []string, passes, goroutines int) *backendUse {
	label := newTenantName("item")
	t.Helper()
	use := &backendUse{}
	ctx := context.Background()
	for pass := range passes {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := g; i < len(names); i += goroutines {
					err := mgr.Run(ctx, names[i], func(ctx context.Context) error {
						db := tenantctx.Session(ctx)
						if _, err := db.Exec(ctx, "INSERT INTO items (name) VALUES ($1)", label); err != nil {
							return err
						}
						var n int
						if err := db.QueryRow(ctx, "SELECT count(*) FROM items WHERE name = $1", label).Scan(&n); err != nil {
							return err
						}
						if n != pass+1 {
							return fmt.Errorf("tenant %s has %d items after pass %d", names[i], n, pass+1)
						}
						var pid uint32
						var bytes int64
						if err := db.QueryRow(ctx, backendMemorySQL).Scan(&pid, &bytes); err != nil {
							return err
						}
						use.note(pid, names[i], bytes)
						return nil
					})
					assert.NoError(t, err)
				}
			})
		}
		wg.Wait()
	}
	return use
}

// TestBackendMemoryBounded serves ten times more tenants than MaxTenantsPerConn
// through a pool of two, and the same traffic through one unbounded connection: with
// it, no backend serves more tenants than the bound, each backend's memory grows by
// less than half what the unbounded backends' grows, and every request succeeds with
// exact values across the retirements.
func TestBackendMemoryBounded(t *testing.T) {
	const bound, tenants, passes = 6, 60, 2
	e := newEnv(t, 2, tenant.Config{MaxTenantsPerConn: bound})
	names := provisionTenants(t, e, "mem", tenants)
	unbounded := newEnv(t, 1, tenant.Config{MaxTenantsPerConn: -1})

	got := serveAll(t, e.mgr, names, passes, 2)
	control := serveAll(t, unbounded.mgr, names, passes, 1) // one backend serves them all
	t.Logf("bounded: %d backends, at most %d tenants and %d bytes each; unbounded: %d backends, %d tenants, %d bytes; one tenant: %d bytes",
		len(got.tenants), got.mostTenants(), got.maxBytes, len(control.tenants), control.mostTenants(), control.maxBytes, got.minBytes)

	assert.LessOrEqual(t, got.mostTenants(), bound, "no backend serves more tenants than the bound")
	assert.GreaterOrEqual(t, len(got.tenants), tenants*passes/bound, "backends retired and were replaced")
	assert.Equal(t, tenants, control.mostTenants(), "the control: unbounded, the backend serves every tenant")
	assert.Less(t, got.maxBytes-got.minBytes, (control.maxBytes-got.minBytes)/2,
		"a bounded backend's memory grows by less than half an unbounded one's")
}
