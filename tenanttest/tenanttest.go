// Package tenanttest helps an application test its handlers and jobs against real
// PostgreSQL, as django-tenants' TenantTestCase does: a fresh database for the test
// package, tenants provisioned with the application's migrations, and a context with
// a tenant session whose transaction is rolled back when the test ends.
//
//	func TestMain(m *testing.M) { os.Exit(tenanttest.Main(m)) }
//
//	func TestNotes(t *testing.T) {
//		mgr := tenanttest.New(t, tenant.Config{Migrations: app.Migrations})
//		tenanttest.Tenant(t, mgr, "acme")
//		ctx := tenanttest.Context(t, mgr, "acme") // rolled back at the end of the test
//		db := tenantctx.Session(ctx)
//		...
//	}
//
// The server is, in order: DATABASE_URL; a local server at 127.0.0.1:5432 as user
// postgres; a throwaway cluster started from the installed PostgreSQL binaries
// (initdb, pg_ctl). When none can be had the tests fail saying how to get one: they
// never skip, so a missing database cannot pass for a green run.
package tenanttest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// Main runs the package's tests against a database created for them and dropped after
// them, with the tenants' login roles made in it (tenant.Config.Roles: roles are the
// cluster's, not the database's); call it from TestMain and pass what it returns to
// os.Exit. A database left behind by a test binary that was killed is dropped by the
// next run on the same host, with its roles.
func Main(m *testing.M) int { return testdb.Main(m) }

// URL is the connection string of the package's database. The test fails when the
// package's TestMain does not call Main.
func URL(t testing.TB) string {
	t.Helper()
	u := testdb.PackageURL()
	if u == "" {
		t.Fatal("tenanttest: no test database: call tenanttest.Main from TestMain")
	}
	return u
}

// DatabaseURL is URL for Example functions, which have no testing.TB. It panics when
// the package's TestMain does not call Main.
func DatabaseURL() string {
	u := testdb.PackageURL()
	if u == "" {
		panic("tenanttest: no test database: call tenanttest.Main from TestMain")
	}
	return u
}

// New returns a Manager made from cfg, on the package's database when cfg has neither
// DSN nor Pool, and closes it when the test ends (after the test's other cleanups,
// since it is registered first: call New before Tenant and Context). Without
// cfg.Logger it logs to the test's output, shown when the test fails or runs with -v.
func New(t testing.TB, cfg tenant.Config) *tenant.Manager {
	t.Helper()
	if cfg.DSN == "" && cfg.Pool == nil {
		cfg.DSN = URL(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testOutput(t), nil))
	}
	mgr, err := tenant.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("tenanttest: new manager: %v", err)
	}
	t.Cleanup(mgr.Close)
	return mgr
}

// Tenant provisions the tenant name with the Manager's migrations and extensions (a
// tenant that exists is brought up to date) and drops it, with everything in it,
// when the test ends. Tests that run in parallel need names of their own. An invalid
// or reserved name fails the test.
func Tenant(t testing.TB, mgr *tenant.Manager, name string) {
	t.Helper()
	if err := mgr.Provisioner().Ensure(context.Background(), name); err != nil {
		t.Fatalf("tenanttest: provision tenant %q: %v", name, err)
	}
	t.Cleanup(func() {
		// Registered after the Manager's Close, so it runs before it; a test that
		// dropped the tenant itself is not an error.
		if err := mgr.Drop(context.Background(), name); err != nil && !errors.Is(err, schema.ErrNotFound) {
			t.Errorf("tenanttest: drop tenant %q: %v", name, err)
		}
	})
}

// output is a test's output until the test's cleanups are done, and stderr after:
// testing panics on a write to a finished test's output, and a Manager's goroutine
// may log late (an after-commit function that outlived Close).
type output struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func testOutput(t testing.TB) *output {
	o := &output{w: t.Output()}
	t.Cleanup(func() { // registered before the Manager's Close: runs after it
		o.mu.Lock()
		defer o.mu.Unlock()
		o.done = true
	})
	return o
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return os.Stderr.Write(p)
	}
	return o.w.Write(p)
}
