package tenant_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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
