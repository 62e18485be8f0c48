package tenant_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// BenchmarkContention measures retries under contention: 16 clients each send 25
// read-modify-write increments of one counter under SERIALIZABLE, with pools of 4 and
// 16 connections. Each iteration is one such run. It reports the share of requests
// answered 409, the attempts per request, and the 99th percentile of request latency,
// for the retry budget (RetryTimeout, the default) against the baseline of a fixed
// count (Attempts: 3, what the lifecycle did before), in the same run.
func BenchmarkContention(b *testing.B) {
	ctx := context.Background()
	for _, conns := range []int32{4, 16} {
		for _, policy := range []struct {
			name     string
			attempts int
		}{{"attempts=3/baseline", 3}, {"budget", 0}} {
			b.Run(fmt.Sprintf("pool=%d/%s", conns, policy.name), func(b *testing.B) {
				p, err := pool.New(ctx, testdb.DatabaseURL(), pool.WithMaxConns(conns))
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				mgr, err := tenant.New(ctx, tenant.Config{Pool: p, Resolver: byHeader, Migrations: appMigrations,
					Attempts: policy.attempts, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				defer mgr.Close()
				const name = "bench_contention"
				if err := mgr.Provisioner().Ensure(ctx, name); err != nil {
					b.Fatal(err)
				}
				defer func() { _ = mgr.Provisioner().Drop(ctx, name) }()
				var runs atomic.Int64
				h := tenant.Middleware(mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					runs.Add(1)
					incrementCounter(w, r)
				}))
				var requests, conflicts int
				var latencies []time.Duration
				var mu sync.Mutex
				for b.Loop() {
					var wg sync.WaitGroup
					for range 16 {
						wg.Go(func() {
							for range 25 {
								start := time.Now()
								rec := do(h, "POST", "/counter", nil, "X-Tenant", name)
								mu.Lock()
								latencies = append(latencies, time.Since(start))
								requests++
								if rec.Code == http.StatusConflict {
									conflicts++
								}
								mu.Unlock()
							}
						})
					}
					wg.Wait()
				}
				slices.Sort(latencies)
				b.ReportMetric(100*float64(conflicts)/float64(requests), "%409")
				b.ReportMetric(float64(runs.Load())/float64(requests), "attempts/req")
				b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
