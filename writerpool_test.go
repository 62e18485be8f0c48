package tenant_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/tenantctx"
)

// The middleware's response writers (header map, buffer) are pooled: what an answered
// request sent, and what its after-commit functions and stray goroutines still hold,
// stays as it was while later requests reuse the writer, whether its response was
// buffered, flushed, or committed and then released.
func TestPooledWritersLeaveAnsweredRequestsAlone(t *testing.T) {
	a := newTenantName("pool")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader, Locales: []language.Tag{language.English, language.German}}, a)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		w.Header().Set("X-Id", id)
		if r.URL.Query().Has("write") {
			insertItem(t, r, "pool-"+id)
		}
		body := strings.Repeat(id+";", 1+len(id)*40) // several sizes, some over 100 bytes
		tenantctx.AfterCommit(r.Context(), func(context.Context) {
			if got := w.Header().Get("X-Id"); got != id {
				t.Errorf("after commit, request %s's header map says %q", id, got)
			}
		})
		if r.URL.Query().Has("flush") {
			_, _ = fmt.Fprint(w, body[:len(body)/2])
			w.(http.Flusher).Flush()
			_, _ = fmt.Fprint(w, body[len(body)/2:])
			return
		}
		_, _ = fmt.Fprint(w, body)
	}))
	type answer struct {
		id  string
		rec *httptest.ResponseRecorder
	}
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				id := fmt.Sprint(g*1000 + i)
				query := "?id=" + id
				switch i % 3 {
				case 1:
					query += "&flush=1"
				case 2:
					query += "&write=1"
				}
				lang := []string{"en", "de"}[i%2]
				rec := do(h, "GET", "/"+query, nil, "X-Tenant", a, "Accept-Language", lang)
				mu.Lock()
				answers = append(answers, answer{id + " " + lang, rec})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	e.mgr.WaitAfterCommit()
	for _, ans := range answers {
		id, lang, _ := strings.Cut(ans.id, " ")
		rec := ans.rec
		require.Equal(t, 200, rec.Code, rec.Body.String())
		assert.Equal(t, strings.Repeat(id+";", 1+len(id)*40), rec.Body.String())
		assert.Equal(t, []string{id}, rec.Header()["X-Id"])
		assert.Equal(t, []string{lang}, rec.Header()["Content-Language"])
		assert.Equal(t, []string{"Accept-Language", "Cookie"}, rec.Header()["Vary"])
		if cl := rec.Header()["Content-Length"]; cl != nil {
			assert.Equal(t, []string{fmt.Sprint(rec.Body.Len())}, cl, "request %s", id)
		}
	}
}

// chi's routing state is the attempt's own wherever the middleware sits: in front of
// the router, inside a route, before a mount. The router's own state is as it was when
// the middleware returns, and a retry routes as the first attempt did.
func TestRoutingStateIsTheAttempts(t *testing.T) {
	a := newTenantName("rst")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	byParam := tenant.Middleware(e.mgr.WithResolver(middleware.URLParam("tenant")))
	id := func(r *http.Request) string {
		return chi.URLParam(r, "id") + "," + chi.RouteContext(r.Context()).RoutePattern()
	}

	// watch checks that the router's state is the same after next as before it.
	watch := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rctx := chi.RouteContext(r.Context())
			keys, values := slices.Clone(rctx.URLParams.Keys), slices.Clone(rctx.URLParams.Values)
			patterns, path := slices.Clone(rctx.RoutePatterns), rctx.RoutePath
			next.ServeHTTP(w, r)
			assert.Equal(t, keys, rctx.URLParams.Keys)
			assert.Equal(t, values, rctx.URLParams.Values)
			assert.Equal(t, patterns, rctx.RoutePatterns)
			assert.Equal(t, path, rctx.RoutePath)
		})
	}
	mounted := chi.NewRouter()
	mounted.Post("/{id}/x", failFirst(t, "mounted", id))
	mounted.Post("/", failFirst(t, "mounted-root", id))
	mounted.Post("/*", failFirst(t, "mounted-rest", func(r *http.Request) string { return chi.URLParam(r, "*") }))
	deeper := chi.NewRouter()
	deeper.Mount("/d", mounted)

	r := chi.NewRouter()
	r.Route("/t/{tenant}", func(r chi.Router) {
		r.Use(watch, byParam)
		r.Post("/items/{id}", failFirst(t, "inside", id))
		r.Mount("/m", mounted)
	})
	r.With(watch, tenant.Middleware(e.mgr)).Mount("/before-mount", mounted)
	r.With(watch, tenant.Middleware(e.mgr)).Post("/inline/{id}", failFirst(t, "inline", id))
	r.With(watch, tenant.Middleware(e.mgr)).Post("/files/*", failFirst(t, "files", func(r *http.Request) string { return chi.URLParam(r, "*") }))
	r.With(watch, tenant.Middleware(e.mgr)).Mount("/deeper/{k}", deeper)
	r.Route("/nested/{tenant}", func(r chi.Router) {
		r.Route("/{section}", func(r chi.Router) {
			r.Use(watch, byParam)
			r.Post("/items/{id}", failFirst(t, "nested", func(r *http.Request) string {
				return chi.URLParam(r, "section") + "/" + chi.URLParam(r, "id")
			}))
		})
	})

	for i, tc := range []struct{ path, want string }{
		{"/t/" + a + "/items/1", "inside 1,/t/{tenant}/items/{id} attempt 2"},
		{"/t/" + a + "/m/2/x", "mounted 2,/t/{tenant}/m/{id}/x attempt 2"},
		{"/before-mount/3/x", "mounted 3,/before-mount/{id}/x attempt 2"},
		{"/inline/4", "inline 4,/inline/{id} attempt 2"},
		{"/before-mount", "mounted-root ,/before-mount attempt 2"},
		{"/before-mount/", "mounted-root ,/before-mount attempt 2"},
		{"/before-mount/a/b/c", "mounted-rest a/b/c attempt 2"},
		{"/files/a/b", "files a/b attempt 2"},
		{"/deeper/k1/d/5/x", "mounted 5,/deeper/{k}/d/{id}/x attempt 2"},
		{"/deeper/k1/d", "mounted-root ,/deeper/{k}/d attempt 2"},
		{"/nested/" + a + "/s/items/6", "nested s/6 attempt 2"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := do(r, "POST", tc.path, nil, "X-Tenant", a, "X-Request", fmt.Sprint("rst", i))
			assert.Equal(t, 200, rec.Code, rec.Body.String())
			assert.Equal(t, tc.want, rec.Body.String())
		})
	}
}
