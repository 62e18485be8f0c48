package tenanttest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenanttest"
)

func TestMain(m *testing.M) { os.Exit(tenanttest.Main(m)) }

var migrations = fstest.MapFS{
	"001_notes.sql": {Data: []byte("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")},
}

func newManager(t *testing.T, opts ...pool.Option) *tenant.Manager {
	return tenanttest.New(t, tenant.Config{Migrations: migrations, PoolOptions: opts})
}

func insert(t *testing.T, ctx context.Context, body string) {
	t.Helper()
	_, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO notes (body) VALUES ($1)", body)
	require.NoError(t, err)
}

func bodies(t *testing.T, ctx context.Context) []string {
	t.Helper()
	rows, err := tenantctx.Session(ctx).Query(ctx, "SELECT body FROM notes ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var b string
		require.NoError(t, rows.Scan(&b))
		out = append(out, b)
	}
	require.NoError(t, rows.Err())
	return out
}

// committed reads the tenant's notes in a transaction of its own: what outlived the
// test's transaction.
func committed(t *testing.T, mgr *tenant.Manager, name string) []string {
	t.Helper()
	var out []string
	require.NoError(t, mgr.Run(context.Background(), name, func(ctx context.Context) error {
		out = bodies(t, ctx)
		return nil
	}))
	return out
}

// What a test writes through its context is visible in it, and gone when it ends;
// its after-commit functions never run, and its context ends with it.
func TestContextRollsBack(t *testing.T) {
	mgr := newManager(t)
	tenanttest.Tenant(t, mgr, "tt_rollback")
	var (
		kept context.Context
		ran  bool
	)
	t.Run("writes", func(t *testing.T) {
		ctx := tenanttest.Context(t, mgr, "tt_rollback")
		insert(t, ctx, "draft")
		assert.Equal(t, []string{"draft"}, bodies(t, ctx))
		assert.Equal(t, "tt_rollback", tenantctx.Schema(ctx))
		tenantctx.AfterCommit(ctx, func(context.Context) { ran = true })
		assert.Len(t, tenanttest.AfterCommitFuncs(ctx), 1)
		kept = ctx
	})
	assert.Empty(t, committed(t, mgr, "tt_rollback"), "rolled back at the end of the subtest")
	assert.False(t, ran, "after-commit functions do not run")
	require.Error(t, kept.Err(), "the context ends with its test")
	_, err := tenantctx.Session(kept).Exec(context.Background(), "SELECT 1")
	assert.ErrorIs(t, err, tenantctx.ErrSessionEnded)
}

// Two tenants' contexts, open at once on a pool of two connections, each see their
// own rows only.
func TestContextsIsolateTenants(t *testing.T) {
	mgr := newManager(t, pool.WithMaxConns(2))
	tenanttest.Tenant(t, mgr, "tt_acme")
	tenanttest.Tenant(t, mgr, "tt_globex")
	acme := tenanttest.Context(t, mgr, "tt_acme")
	globex := tenanttest.Context(t, mgr, "tt_globex")
	insert(t, acme, "acme's")
	insert(t, globex, "globex's")
	assert.Equal(t, []string{"acme's"}, bodies(t, acme))
	assert.Equal(t, []string{"globex's"}, bodies(t, globex))
}

// A pool of one connection serves one test context after another: each gives its
// connection back when its test ends.
func TestContextOnePool(t *testing.T) {
	mgr := newManager(t, pool.WithMaxConns(1))
	tenanttest.Tenant(t, mgr, "tt_single")
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			ctx := tenanttest.Context(t, mgr, "tt_single")
			assert.Empty(t, bodies(t, ctx), "nothing left by the previous test")
			insert(t, ctx, "note")
		})
	}
	assert.Equal(t, int32(0), mgr.Pool().Stat().AcquiredConns())
}

// A request through the Middleware runs in a transaction of its own and commits, as
// in production; the test's tenant, dropped at its end, takes the data with it.
func TestRequestThroughMiddleware(t *testing.T) {
	mgr := tenanttest.New(t, tenant.Config{Migrations: migrations, Resolver: middleware.Header("X-Tenant")})
	tenanttest.Tenant(t, mgr, "tt_http")
	app := tenant.Middleware(mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			insert(t, r.Context(), "posted")
			w.WriteHeader(http.StatusCreated)
			return
		}
		fmt.Fprint(w, bodies(t, r.Context()))
	}))
	for _, tc := range []struct {
		method, tenant string
		code           int
		body           string
	}{
		{"POST", "tt_http", http.StatusCreated, ""},
		{"GET", "tt_http", http.StatusOK, "[posted]"},
		{"GET", "tt_other", http.StatusNotFound, "unknown tenant\n"},
	} {
		req := httptest.NewRequestWithContext(t.Context(), tc.method, "/notes", nil)
		req.Header.Set("X-Tenant", tc.tenant)
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		assert.Equal(t, tc.code, rec.Code, "%s %s", tc.method, tc.tenant)
		assert.Equal(t, tc.body, rec.Body.String(), "%s %s", tc.method, tc.tenant)
	}
	assert.Equal(t, []string{"posted"}, committed(t, mgr, "tt_http"))
}
