package tenant_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/tenantctx"
)

// whoami answers "<tenant> <path the router matched>".
func whoami(w http.ResponseWriter, r *http.Request) {
	var n int
	if err := tenantctx.Session(r.Context()).QueryRow(r.Context(), "SELECT count(*) FROM items").Scan(&n); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	_, _ = fmt.Fprintf(w, "%s %s", tenantctx.Schema(r.Context()), r.URL.Path)
}

func TestRouters(t *testing.T) {
	a := newTenantName("rtr")
	e := newEnv(t, 2, tenant.Config{}, a)
	withResolver := func(res middleware.Resolver) func(http.Handler) http.Handler {
		return tenant.Middleware(e.mgr.WithResolver(res))
	}

	chiSub := chi.NewRouter()
	chiSub.Use(withResolver(middleware.Subdomain("example.com")))
	chiSub.Get("/documents", whoami)

	chiPrefix := chi.NewRouter()
	chiPrefix.Use(withResolver(middleware.PathPrefix("/t")))
	chiPrefix.Get("/documents", whoami)

	chiParam := chi.NewRouter()
	chiParam.Route("/t/{tenant}", func(r chi.Router) {
		r.Use(withResolver(middleware.URLParam("tenant")))
		r.Get("/documents", whoami)
	})

	muxValue := http.NewServeMux()
	muxValue.Handle("GET /t/{tenant}/documents", withResolver(middleware.PathValue("tenant"))(http.HandlerFunc(whoami)))

	muxPrefix := http.NewServeMux()
	muxPrefix.HandleFunc("GET /documents", whoami)
	both := withResolver(middleware.First(middleware.Subdomain("example.com"), middleware.PathPrefix("/t")))(muxPrefix)

	for _, tc := range []struct {
		name    string
		h       http.Handler
		host    string
		path    string
		want    string
		wantErr int
	}{
		{"chi subdomain", chiSub, a + ".example.com:8080", "/documents", a + " /documents", 0},
		{"chi subdomain www", chiSub, "www.example.com", "/documents", "", 404},
		{"chi path prefix", chiPrefix, "example.com", "/t/" + a + "/documents", a + " /documents", 0},
		{"chi path prefix unknown", chiPrefix, "example.com", "/t/nosuch/documents", "", 404},
		{"chi url param", chiParam, "example.com", "/t/" + a + "/documents", a + " /t/" + a + "/documents", 0},
		{"mux path value", muxValue, "example.com", "/t/" + a + "/documents", a + " /t/" + a + "/documents", 0},
		{"mux first: subdomain", both, a + ".example.com", "/documents", a + " /documents", 0},
		{"mux first: prefix", both, "localhost", "/t/" + a + "/documents", a + " /documents", 0},
		{"mux first: neither", both, "localhost", "/documents", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.path, nil)
			req.Host = tc.host
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			if tc.wantErr != 0 {
				assert.Equal(t, tc.wantErr, rec.Code)
				assert.Equal(t, "unknown tenant\n", rec.Body.String())
				return
			}
			assert.Equal(t, 200, rec.Code, rec.Body.String())
			assert.Equal(t, tc.want, rec.Body.String())
		})
	}
}

// failFirst answers "<route> <param> attempt <n>"; its first attempt of each request
// (X-Request) meets a serialization failure, so the request runs again.
func failFirst(t *testing.T, route string, param func(*http.Request) string) http.HandlerFunc {
	var seen sync.Map
	return func(w http.ResponseWriter, r *http.Request) {
		n, _ := seen.LoadOrStore(r.Header.Get("X-Request"), new(atomic.Int32))
		attempt := n.(*atomic.Int32).Add(1)
		if attempt == 1 {
			_, err := tenantctx.Session(r.Context()).Exec(r.Context(), raise("40001", "could not serialize"))
			assert.Error(t, err)
			return
		}
		_, _ = fmt.Fprintf(w, "%s %s attempt %d", route, param(r), attempt)
	}
}

// A retry runs the same handler with the same router state as the first attempt,
// though chi rewrites its route context in place while routing: through Route, Mount,
// Group and With, nested middleware, and ServeMux (nested with StripPrefix).
func TestRetryRunsTheSameHandler(t *testing.T) {
	a := newTenantName("rty")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	none := func(*http.Request) string { return "-" }
	id := func(r *http.Request) string { return chi.URLParam(r, "id") }
	passthrough := func(next http.Handler) http.Handler { return next }

	mounted := chi.NewRouter()
	mounted.Post("/counter", failFirst(t, "mounted", none))
	mounted.Post("/{id}/x", failFirst(t, "mounted-x", id))
	inner := http.NewServeMux()
	inner.HandleFunc("POST /counter", failFirst(t, "mux", none))
	inner.HandleFunc("POST /things/{id}", failFirst(t, "mux-thing", func(r *http.Request) string { return r.PathValue("id") }))

	r := chi.NewRouter()
	r.Use(tenant.Middleware(e.mgr))
	r.Route("/api", func(r chi.Router) {
		r.Post("/counter", failFirst(t, "api", none))
		r.Route("/admin", func(r chi.Router) { r.Post("/counter", failFirst(t, "admin", none)) })
		r.With(passthrough).Post("/items/{id}", failFirst(t, "item", id))
		r.Group(func(r chi.Router) {
			r.Use(passthrough)
			r.Post("/grouped/{id}", failFirst(t, "grouped", id))
		})
	})
	r.Mount("/mounted", mounted)
	r.Mount("/mux", http.StripPrefix("/mux", inner))

	muxTop := http.NewServeMux()
	muxTop.Handle("/", tenant.Middleware(e.mgr)(http.StripPrefix("/v1", inner)))

	for i, tc := range []struct {
		h          http.Handler
		path, want string
	}{
		{r, "/api/counter", "api - attempt 2"},
		{r, "/api/admin/counter", "admin - attempt 2"},
		{r, "/api/items/42", "item 42 attempt 2"},
		{r, "/api/grouped/7", "grouped 7 attempt 2"},
		{r, "/mounted/counter", "mounted - attempt 2"},
		{r, "/mounted/9/x", "mounted-x 9 attempt 2"},
		{r, "/mux/counter", "mux - attempt 2"},
		{r, "/mux/things/5", "mux-thing 5 attempt 2"},
		{muxTop, "/v1/counter", "mux - attempt 2"},
		{muxTop, "/v1/things/6", "mux-thing 6 attempt 2"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := do(tc.h, "POST", tc.path, nil, "X-Tenant", a, "X-Request", fmt.Sprint(i))
			assert.Equal(t, 200, rec.Code, rec.Body.String())
			assert.Equal(t, tc.want, rec.Body.String())
		})
	}
}
