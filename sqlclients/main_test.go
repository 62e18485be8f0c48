package sqlclients_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/tenanttest"
)

func TestMain(m *testing.M) { os.Exit(tenanttest.Main(m)) }

// Every tenant starts with one document titled after its schema, so that a read in the
// wrong tenant shows.
var migrations = fstest.MapFS{
	"001_documents.sql": {Data: []byte(`CREATE TABLE documents (
		id bigserial PRIMARY KEY,
		title text NOT NULL,
		tags text[] NOT NULL DEFAULT '{}',
		created_at timestamptz NOT NULL DEFAULT now()
	);
	INSERT INTO documents (title) VALUES (current_schema())`)},
}

// setup makes a Manager on a pool of one connection, so that every request reuses the
// previous one's backend, and provisions the tenants.
func setup(t *testing.T, names ...string) *tenant.Manager {
	t.Helper()
	mgr := tenanttest.New(t, tenant.Config{
		Migrations:  migrations,
		Resolver:    middleware.Header("X-Tenant"),
		PoolOptions: []pool.Option{pool.WithMaxConns(1)},
	})
	for _, name := range names {
		tenanttest.Tenant(t, mgr, name)
	}
	return mgr
}

// serve runs h behind the Middleware as a request of tenant name, and fails the test
// unless it answers want.
func serve(t *testing.T, mgr *tenant.Manager, name string, want int, h http.HandlerFunc) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("X-Tenant", name)
	rec := httptest.NewRecorder()
	tenant.Middleware(mgr)(h).ServeHTTP(rec, req)
	require.Equal(t, want, rec.Code, rec.Body.String())
}

// fail answers 500, as a handler does when its work went wrong after it wrote.
func fail(w http.ResponseWriter) { http.Error(w, "failed", http.StatusInternalServerError) }
