package tenant_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// BenchmarkRequest measures what tenant.Middleware costs per request.
//
//   - NoQuery: a handler that never touches the database, through the middleware,
//     against the same handler bare. The difference is resolve + validate + cached
//     admission + buffering: no connection, no round trip.
//   - OneQuery: a handler that runs one SELECT, through the middleware, against a
//     hand-written handler doing the same work the careful way (BeginTx with
//     SET LOCAL in one round trip, the query, COMMIT) on the same pool.
func BenchmarkRequest(b *testing.B) {
	ctx := context.Background()
	p, err := pool.New(ctx, testdb.DatabaseURL(), pool.WithMaxConns(4))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	mgr, err := tenant.New(ctx, tenant.Config{Pool: p, Resolver: byHeader, Migrations: appMigrations})
	if err != nil {
		b.Fatal(err)
	}
	defer mgr.Close()
	const name = "bench_req"
	if err := mgr.Provisioner().Ensure(ctx, name); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = mgr.Provisioner().Drop(ctx, name) }()

	run := func(b *testing.B, h http.Handler) {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Tenant", name)
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	}
	noQuery := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	b.Run("NoQuery/baseline", func(b *testing.B) { run(b, noQuery) })
	b.Run("NoQuery/middleware", func(b *testing.B) { run(b, tenant.Middleware(mgr)(noQuery)) })

	const q = "SELECT value FROM counter WHERE id = 1"
	handWritten := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tx, err := p.BeginTx(r.Context(), pgx.TxOptions{
			BeginQuery: "BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL search_path TO " + schema.SearchPath(r.Header.Get("X-Tenant")),
		})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer func() { _ = tx.Rollback(r.Context()) }()
		var v int
		if err := tx.QueryRow(r.Context(), q).Scan(&v); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if err := tx.Commit(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	viaSession := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v int
		if err := tenantctx.Session(r.Context()).QueryRow(r.Context(), q).Scan(&v); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	b.Run("OneQuery/baseline", func(b *testing.B) { run(b, handWritten) })
	b.Run("OneQuery/middleware", func(b *testing.B) { run(b, tenant.Middleware(mgr)(viaSession)) })
}
