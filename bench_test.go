package tenant_test

import (
	"context"
	"fmt"
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
//     SET LOCAL in one round trip, the query, COMMIT) on the same pool, for one
//     tenant and for 50 tenants in turn (the hand-written statement is shared by all
//     tenants and re-planned at each switch; the middleware's is per tenant).
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
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("bench_req_%02d", i)
		if err := mgr.Provisioner().Ensure(ctx, names[i]); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = mgr.Provisioner().Drop(ctx, names[i]) }()
	}

	run := func(b *testing.B, h http.Handler, tenants int) {
		reqs := make([]*http.Request, tenants)
		for i := range reqs {
			reqs[i] = httptest.NewRequest("GET", "/", nil)
			reqs[i].Header.Set("X-Tenant", names[i])
		}
		i := 0
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, reqs[i%tenants])
			if rec.Code != 200 {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
			i++
		}
	}
	noQuery := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	b.Run("NoQuery/baseline", func(b *testing.B) { run(b, noQuery, 1) })
	b.Run("NoQuery/middleware", func(b *testing.B) { run(b, tenant.Middleware(mgr)(noQuery), 1) })

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
	for _, tenants := range []int{1, 50} {
		b.Run(fmt.Sprintf("OneQuery/tenants=%d/baseline", tenants), func(b *testing.B) { run(b, handWritten, tenants) })
		b.Run(fmt.Sprintf("OneQuery/tenants=%d/middleware", tenants), func(b *testing.B) { run(b, tenant.Middleware(mgr)(viaSession), tenants) })
	}
}
