package tenant_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/pool"
)

// maxAllocsOverBare is what tenant.Middleware may allocate per request on top of the
// router, for a known tenant whose handler does not query. It allocates its request
// (the attempt with all it hands the handler), the attempt's session and, into a
// response header map of net/http's, room for the Content-Length it sets; PathPrefix
// adds the request it hands on. The rest is slack.
const maxAllocsOverBare = 5

// goSideCase is one way a request reaches a handler that does not query: through a
// bare chi router, and through the same router with tenant.Middleware.
type goSideCase struct {
	name     string
	bare, mw http.Handler
	// bareReq and mwReq build the requests (the same but for where the tenant is).
	bareReq, mwReq func() *http.Request
}

// goSideBody is what the handler writes: a small body, from a variable so that
// writing it costs nothing of its own.
var goSideBody = []byte("hello, tenant")

func goSideHandler(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(goSideBody) }

// goSideCases provisions a tenant and returns the cases: every resolver used in
// practice without locales, and the header resolver with locales (none asked for, an
// Accept-Language header with a few tags and q-values, a query parameter, a cookie).
// Admission has the tenant cached once each case served one request.
func goSideCases(tb testing.TB) []goSideCase {
	tb.Helper()
	ctx := context.Background()
	p, err := pool.New(ctx, testdb.URL(tb), pool.WithMaxConns(2))
	require.NoError(tb, err)
	tb.Cleanup(p.Close)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil)) // Info: what production runs at
	newManager := func(locales ...language.Tag) *tenant.Manager {
		mgr, err := tenant.New(ctx, tenant.Config{Pool: p, Resolver: byHeader, Migrations: appMigrations,
			Locales: locales, Logger: logger, HitTTL: time.Hour})
		require.NoError(tb, err)
		tb.Cleanup(mgr.Close)
		return mgr
	}
	plain := newManager()
	localized := newManager(language.English, language.German, language.French, language.MustParse("de-CH"))
	name := newTenantName("allocs")
	require.NoError(tb, plain.Provisioner().Ensure(ctx, name))
	tb.Cleanup(func() { _ = plain.Provisioner().Drop(ctx, name) })

	// flat serves /documents, with mw (if any) in front.
	flat := func(mw func(http.Handler) http.Handler) http.Handler {
		r := chi.NewRouter()
		if mw != nil {
			r.Use(mw)
		}
		r.Get("/documents", goSideHandler)
		return r
	}
	// nested serves /t/{tenant}/documents, with mw (if any) inside the route.
	nested := func(mw func(http.Handler) http.Handler) http.Handler {
		r := chi.NewRouter()
		r.Route("/t/{tenant}", func(r chi.Router) {
			if mw != nil {
				r.Use(mw)
			}
			r.Get("/documents", goSideHandler)
		})
		return r
	}
	get := func(target string, header ...string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest("GET", target, nil)
			for i := 0; i+1 < len(header); i += 2 {
				r.Header.Set(header[i], header[i+1])
			}
			return r
		}
	}
	withHost := func(host string, req func() *http.Request) func() *http.Request {
		return func() *http.Request {
			r := req()
			r.Host = host
			return r
		}
	}
	const acceptLanguage = "de-CH, de;q=0.9, fr;q=0.7, en-GB;q=0.5, *;q=0.1"
	with := func(mgr *tenant.Manager, res middleware.Resolver) func(http.Handler) http.Handler {
		return tenant.Middleware(mgr.WithResolver(res))
	}
	return []goSideCase{
		{name: "header", bare: flat(nil), mw: flat(with(plain, byHeader)),
			bareReq: get("/documents"), mwReq: get("/documents", "X-Tenant", name)},
		{name: "subdomain", bare: flat(nil), mw: flat(with(plain, middleware.Subdomain("example.com"))),
			bareReq: withHost("example.com", get("/documents")), mwReq: withHost(name+".example.com", get("/documents"))},
		{name: "subdomain+port", bare: flat(nil), mw: flat(with(plain, middleware.Subdomain("example.com"))),
			bareReq: withHost("example.com:8080", get("/documents")), mwReq: withHost(name+".example.com:8080", get("/documents"))},
		{name: "host", bare: flat(nil), mw: flat(with(plain, middleware.Host())),
			bareReq: withHost("localhost:8080", get("/documents")), mwReq: withHost(name+":8080", get("/documents"))},
		{name: "path prefix", bare: flat(nil), mw: flat(with(plain, middleware.PathPrefix("/t"))),
			bareReq: get("/documents"), mwReq: get("/t/" + name + "/documents")},
		{name: "chi url param", bare: nested(nil), mw: nested(with(plain, middleware.URLParam("tenant"))),
			bareReq: get("/t/" + name + "/documents"), mwReq: get("/t/" + name + "/documents")},
		{name: "locales", bare: flat(nil), mw: flat(with(localized, byHeader)),
			bareReq: get("/documents"), mwReq: get("/documents", "X-Tenant", name)},
		{name: "locales+accept-language", bare: flat(nil), mw: flat(with(localized, byHeader)),
			bareReq: get("/documents", "Accept-Language", acceptLanguage),
			mwReq:   get("/documents", "X-Tenant", name, "Accept-Language", acceptLanguage)},
		{name: "locales+query", bare: flat(nil), mw: flat(with(localized, byHeader)),
			bareReq: get("/documents?page=2&locale=de"), mwReq: get("/documents?page=2&locale=de", "X-Tenant", name)},
		{name: "locales+cookie", bare: flat(nil), mw: flat(with(localized, byHeader)),
			bareReq: get("/documents", "Cookie", "session=abc; locale=fr"),
			mwReq:   get("/documents", "X-Tenant", name, "Cookie", "session=abc; locale=fr")},
	}
}

// serveOK serves req through h into a fresh recorder and fails unless the handler
// answered.
func serveOK(tb testing.TB, h http.Handler, req *http.Request) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.String() != string(goSideBody) {
		tb.Fatalf("%d %q", rec.Code, rec.Body)
	}
}

// serverWriter is a ResponseWriter that allocates as net/http's does: a fresh header
// map per response, and nothing for the status or the body (which it only counts).
// (httptest.ResponseRecorder does more, and less: it sniffs the content type and sets
// a header only when the handler did not call WriteHeader, as the middleware does.)
type serverWriter struct {
	header http.Header
	status int
	n      int
}

func (w *serverWriter) Header() http.Header { return w.header }
func (w *serverWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *serverWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}
func (w *serverWriter) Flush() {}

// serveToServerWriter is serveOK into a serverWriter.
func serveToServerWriter(tb testing.TB, h http.Handler, req *http.Request) {
	w := &serverWriter{header: make(http.Header)}
	h.ServeHTTP(w, req)
	if w.status != http.StatusOK || w.n != len(goSideBody) {
		tb.Fatalf("%d, %d bytes", w.status, w.n)
	}
}

// TestGoSideAllocations holds tenant.Middleware to what it may allocate per request
// over a bare chi router: the counts are measured for both in the same test, so what
// chi, net/http and the writer allocate cancels out. Into a recorder and into a
// writer that allocates as net/http's does (where the middleware's Content-Length
// header takes room in the response's header map, which the bare handler's response
// leaves empty).
//
// make test runs it under the race detector, which adds no heap allocations of its
// own, but makes sync.Pool drop a quarter of what is put back: the pooled response
// buffer and header map are then made again now and then, which the averaged count
// absorbs (one more at most; the count without the race detector is lower).
func TestGoSideAllocations(t *testing.T) {
	for _, tc := range goSideCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			bareReq, mwReq := tc.bareReq(), tc.mwReq()
			serveOK(t, tc.mw, mwReq) // admits the tenant
			for _, serve := range []struct {
				into string
				fn   func(testing.TB, http.Handler, *http.Request)
			}{{"recorder", serveOK}, {"server writer", serveToServerWriter}} {
				bare := testing.AllocsPerRun(200, func() { serve.fn(t, tc.bare, bareReq) })
				mw := testing.AllocsPerRun(200, func() { serve.fn(t, tc.mw, mwReq) })
				t.Logf("allocations per request into a %s: bare %.0f, middleware %.0f", serve.into, bare, mw)
				assert.LessOrEqual(t, mw-bare, float64(maxAllocsOverBare), "allocations over bare chi, into a %s", serve.into)
			}
		})
	}
}

// BenchmarkGoSide measures what tenant.Middleware costs a request whose handler does
// not query, over a bare chi router, for the cases of TestGoSideAllocations. Both run
// in the same benchmark, in alternating blocks of requests, so that the machine's
// drift hits both alike; the times reported are medians over the blocks (a block
// that another process interrupted does not count), per request: bare, middleware,
// and the difference of the two in each pair of blocks. Allocations are counted
// apart, per request.
func BenchmarkGoSide(b *testing.B) {
	for _, tc := range goSideCases(b) {
		b.Run(tc.name, func(b *testing.B) {
			bareReq, mwReq := tc.bareReq(), tc.mwReq()
			serveOK(b, tc.mw, mwReq)
			bareAllocs := testing.AllocsPerRun(100, func() { serveOK(b, tc.bare, bareReq) })
			mwAllocs := testing.AllocsPerRun(100, func() { serveOK(b, tc.mw, mwReq) })
			const block = 32
			var bare, mw, over []float64
			b.ResetTimer()
			for done := 0; done < b.N; done += block {
				n := min(block, b.N-done)
				start := time.Now()
				for range n {
					serveOK(b, tc.bare, bareReq)
				}
				mid := time.Now()
				for range n {
					serveOK(b, tc.mw, mwReq)
				}
				bareNs, mwNs := float64(mid.Sub(start))/float64(n), float64(time.Since(mid))/float64(n)
				bare, mw, over = append(bare, bareNs), append(mw, mwNs), append(over, mwNs-bareNs)
			}
			b.StopTimer()
			b.ReportMetric(0, "ns/op") // a bare and a middleware request: see the metrics below
			b.ReportMetric(median(bare), "bare-ns/req")
			b.ReportMetric(median(mw), "mw-ns/req")
			b.ReportMetric(median(over), "over-ns/req")
			b.ReportMetric(bareAllocs, "bare-allocs/req")
			b.ReportMetric(mwAllocs, "mw-allocs/req")
			b.ReportMetric(mwAllocs-bareAllocs, "over-allocs/req")
		})
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
