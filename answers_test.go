package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/tenantctx"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = fmt.Fprint(w, "hello "+tenantctx.Schema(r.Context()))
})

// Missing, invalid, unknown: the same 404 and body, so clients cannot probe which.
func TestUnknownTenantAnswers(t *testing.T) {
	a := newTenantName("ua")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader, Reserved: []string{"audit"}}, a)
	h := tenant.Middleware(e.mgr)(okHandler)
	for _, name := range []string{"", "Acme", "pg_catalog", "public", "audit", "a--b", "x'; DROP SCHEMA public; --", "nosuch_tenant", strings.Repeat("a", 64)} {
		t.Run(name, func(t *testing.T) {
			rec := do(h, "GET", "/", nil, "X-Tenant", name)
			assert.Equal(t, 404, rec.Code)
			assert.Equal(t, "unknown tenant\n", rec.Body.String())
		})
	}
	assert.Equal(t, "hello "+a, do(h, "GET", "/", nil, "X-Tenant", a).Body.String())
	assert.Contains(t, e.logs.String(), "tenant=nosuch_tenant", "the detail is logged with the tenant")
}

func TestDatabaseUnreachableAnswers503(t *testing.T) {
	logs := &logBuffer{}
	mgr, err := tenant.New(context.Background(), tenant.Config{
		DSN:      "postgres://app:s3cretpw@127.0.0.1:1/app?connect_timeout=1",
		Resolver: byHeader,
		Logger:   slogTo(logs),
	})
	require.NoError(t, err, "New does not connect")
	defer mgr.Close()
	rec := do(tenant.Middleware(mgr)(okHandler), "GET", "/", nil, "X-Tenant", "acme")
	assert.Equal(t, 503, rec.Code)
	assert.Equal(t, "5", rec.Header().Get("Retry-After"))
	assert.Equal(t, "service unavailable\n", rec.Body.String())
	assert.Contains(t, logs.String(), "tenant=acme")
	assert.NotContains(t, logs.String(), "s3cretpw")

	err = mgr.Run(context.Background(), "acme", func(context.Context) error { return nil })
	assert.ErrorIs(t, err, tenant.ErrUnavailable)
}

// The pool dies after admission: the session cannot begin, the handler's answer is
// replaced by 503.
func TestSessionBeginFailureAnswers503(t *testing.T) {
	a := newTenantName("bf")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "SELECT 1")
		if err != nil {
			http.Error(w, "handler saw: "+err.Error(), 500)
		}
	}))
	require.Equal(t, 200, do(h, "GET", "/", nil, "X-Tenant", a).Code)
	e.pool.Close()
	rec := do(h, "GET", "/", nil, "X-Tenant", a)
	assert.Equal(t, 503, rec.Code)
	assert.Equal(t, "service unavailable\n", rec.Body.String())
}

func TestErrorHandlerOption(t *testing.T) {
	var got error
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader, ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(tenant.StatusOf(err))
		_, _ = fmt.Fprint(w, `{"error":"no such workspace"}`)
	}})
	rec := do(tenant.Middleware(e.mgr)(okHandler), "GET", "/", nil, "X-Tenant", "nosuch")
	assert.Equal(t, 404, rec.Code)
	assert.Equal(t, `{"error":"no such workspace"}`, rec.Body.String())
	assert.True(t, errors.Is(got, tenant.ErrUnknownTenant))
}

// A flood of random valid subdomains under ExistingOnly creates nothing and costs at
// most one catalog query per distinct name, however many requests ask for it.
func TestFloodOfUnknownTenants(t *testing.T) {
	// Misses are remembered for an hour here: the default 2 s could run out before
	// 2,000 requests under the race detector, and the count below would be off.
	e := newEnv(t, 4, tenant.Config{Resolver: middleware.Subdomain("example.com"), MissTTL: time.Hour})
	h := tenant.Middleware(e.mgr)(okHandler)
	schemas := e.count(t, "SELECT count(*) FROM pg_namespace")
	names := make([]string, 1000)
	for i := range names {
		names[i] = newTenantName("flood")
	}
	before := e.queries.n.Load()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < len(names); i += 4 { // every name asked twice, concurrently
				req := newRequest(context.Background(), "")
				req.Host = names[i] + ".example.com"
				rec := newRecorder()
				h.ServeHTTP(rec, req)
				assert.Equal(t, 404, rec.Code)
			}
		})
	}
	wg.Wait()
	queries := e.queries.n.Load() - before
	t.Logf("%d catalog queries for 2000 requests over 1000 names", queries)
	assert.LessOrEqual(t, queries, int64(len(names)))
	assert.Equal(t, schemas, e.count(t, "SELECT count(*) FROM pg_namespace"), "no schema was created")

	before = e.queries.n.Load()
	for _, n := range names[:100] {
		req := newRequest(context.Background(), "")
		req.Host = n + ".example.com"
		h.ServeHTTP(newRecorder(), req)
	}
	assert.Equal(t, int64(0), e.queries.n.Load()-before, "misses are remembered for a while")
}

func TestAutoCreate(t *testing.T) {
	allowed := newTenantName("new")
	refused := newTenantName("other")
	e := newEnv(t, 2, tenant.Config{
		Resolver:  byHeader,
		Admission: tenant.AutoCreate(func(_ context.Context, name string) bool { return strings.HasPrefix(name, "new_") }),
	})
	t.Cleanup(func() { _, _ = e.admin.Exec(context.Background(), `DROP SCHEMA IF EXISTS "`+allowed+`" CASCADE`) })
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		if !assert.NoError(t, tenantctx.Session(r.Context()).QueryRow(r.Context(), "SELECT value FROM counter").Scan(&n)) {
			return
		}
		_, _ = fmt.Fprint(w, n)
	}))
	rec := do(h, "GET", "/", nil, "X-Tenant", allowed)
	assert.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Equal(t, "0", rec.Body.String(), "schema and migrations are in place on the first request")

	assert.Equal(t, 404, do(h, "GET", "/", nil, "X-Tenant", refused).Code)
	assert.Equal(t, 404, do(h, "GET", "/", nil, "X-Tenant", "new-Invalid").Code)
	assert.Zero(t, e.count(t, "SELECT count(*) FROM pg_namespace WHERE nspname IN ($1, 'new-Invalid')", refused))
}
