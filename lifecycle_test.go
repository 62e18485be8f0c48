package tenant_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// insertHandler inserts an item named by ?name= and answers with ?status=.
func insertHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "INSERT INTO items (name) VALUES ($1)", r.URL.Query().Get("name"))
		if !assert.NoError(t, err) {
			http.Error(w, err.Error(), 500)
			return
		}
		if r.URL.Query().Get("rollback") != "" {
			tenantctx.RollbackOnly(r.Context())
		}
		status := 200
		_, _ = fmt.Sscan(r.URL.Query().Get("status"), &status)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "done")
	})
}

func TestStatusDecidesCommit(t *testing.T) {
	a := newTenantName("st")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, a)
	h := tenant.Middleware(e.mgr)(insertHandler(t))
	for _, tc := range []struct {
		query     string
		committed bool
	}{
		{"status=200", true}, {"status=201", true}, {"status=204", true}, {"status=302", true}, {"status=304", true},
		{"status=400", false}, {"status=404", false}, {"status=409", false}, {"status=500", false}, {"status=503", false},
		{"status=200&rollback=1", false}, {"status=201&rollback=1", false},
	} {
		t.Run(tc.query, func(t *testing.T) {
			name := newTenantName("item")
			rec := do(h, "POST", "/?name="+name+"&"+tc.query, nil, "X-Tenant", a)
			want := 0
			if tc.committed {
				want = 1
			}
			assert.Equal(t, want, e.items(t, a, name))
			status, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(tc.query, "&", 2)[0], "status="))
			assert.Equal(t, status, rec.Code, "the handler's status reaches the client, committed or not")
		})
	}
}

// committedAtFirstByte is a ResponseWriter that checks, when the response's first
// byte or header leaves, whether the item is already visible to other sessions.
type committedAtFirstByte struct {
	*httptest.ResponseRecorder
	check   func() int
	visible atomic.Int32
	checked atomic.Bool
}

func (c *committedAtFirstByte) observe() {
	if c.checked.CompareAndSwap(false, true) {
		c.visible.Store(int32(c.check()))
	}
}
func (c *committedAtFirstByte) WriteHeader(code int) {
	c.observe()
	c.ResponseRecorder.WriteHeader(code)
}
func (c *committedAtFirstByte) Write(p []byte) (int, error) {
	c.observe()
	return c.ResponseRecorder.Write(p)
}

func TestCommitBeforeFirstByte(t *testing.T) {
	a := newTenantName("cb")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, a)
	h := tenant.Middleware(e.mgr)(insertHandler(t))
	name := newTenantName("item")
	w := &committedAtFirstByte{ResponseRecorder: httptest.NewRecorder(), check: func() int { return e.items(t, a, name) }}
	req := httptest.NewRequest("POST", "/?status=201&name="+name, nil)
	req.Header.Set("X-Tenant", a)
	h.ServeHTTP(w, req)
	assert.Equal(t, 201, w.Code)
	assert.Equal(t, "done", w.Body.String())
	assert.True(t, w.checked.Load())
	assert.Equal(t, int32(1), w.visible.Load(), "the row was committed before the first byte left")
}

// A COMMIT that fails (a deferred constraint) turns the handler's 200 into a 500: the
// client never sees a 2xx for lost data.
func TestCommitFailureAnswers500(t *testing.T) {
	a := newTenantName("cf")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, a)
	var hooks atomic.Int32
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		_, err := db.Exec(r.Context(), "INSERT INTO pending VALUES (1), (1)")
		if !assert.NoError(t, err, "the unique check is deferred to COMMIT") {
			return
		}
		tenantctx.AfterCommit(r.Context(), func(context.Context) { hooks.Add(1) })
		_, _ = io.WriteString(w, "all good")
	}))
	rec := do(h, "POST", "/", nil, "X-Tenant", a)
	assert.Equal(t, 500, rec.Code)
	assert.Equal(t, "commit failed\n", rec.Body.String())
	assert.NotContains(t, rec.Body.String(), "all good")
	e.mgr.WaitAfterCommit()
	assert.Zero(t, hooks.Load(), "after-commit functions run only after a commit")
	assert.Contains(t, e.logs.String(), "tenant="+a)
	assert.Contains(t, e.logs.String(), "23505", "the detail goes to the log")
}

func TestPanicRollsBackAndRepanics(t *testing.T) {
	a := newTenantName("pa")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	name := newTenantName("item")
	boom := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		insertItem(t, r, name)
		_, _ = io.WriteString(w, "never sent")
		panic("boom")
	})
	r := chi.NewRouter()
	r.Use(chimw.Recoverer)
	r.Use(tenant.Middleware(e.mgr))
	r.Post("/", boom)
	rec := do(r, "POST", "/", nil, "X-Tenant", a)
	assert.Equal(t, 500, rec.Code, "chi's Recoverer answered")
	assert.NotContains(t, rec.Body.String(), "never sent")
	assert.Equal(t, 0, e.items(t, a, name))
	assert.Zero(t, e.pool.Stat().AcquiredConns(), "the connection went back to the pool")

	assert.PanicsWithValue(t, "boom", func() { do(tenant.Middleware(e.mgr)(boom), "POST", "/", nil, "X-Tenant", a) },
		"without a recoverer the panic goes on, unchanged")
	assert.Equal(t, 0, e.items(t, a, name))
	assert.Zero(t, e.pool.Stat().AcquiredConns())
}

func TestCancelledRequestRollsBack(t *testing.T) {
	a := newTenantName("cx")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, a)
	name := newTenantName("item")
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		insertItem(t, r, name)
		cancel := r.Context().Value(cancelKey{}).(context.CancelFunc)
		cancel() // the client went away
		_, _ = io.WriteString(w, "ok")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	ctx = context.WithValue(ctx, cancelKey{}, cancel)
	req := httptest.NewRequest("POST", "/", nil).WithContext(ctx)
	req.Header.Set("X-Tenant", a)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, 0, e.items(t, a, name))
	assert.Zero(t, e.pool.Stat().AcquiredConns())
	assert.Empty(t, rec.Body.String(), "nothing is sent to a client that left")
}

type cancelKey struct{}

func TestAfterCommitRunsAfterCommitOnly(t *testing.T) {
	a := newTenantName("ac")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, a)
	var seen []string
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		insertItem(t, r, name)
		tenantctx.AfterCommit(r.Context(), func(ctx context.Context) {
			assert.NoError(t, ctx.Err())
			seen = append(seen, fmt.Sprintf("%s:%d", name, e.items(t, a, name)))
		})
		tenantctx.AfterCommit(r.Context(), func(context.Context) { panic("a failing hook does not stop the next") })
		tenantctx.AfterCommit(r.Context(), func(context.Context) { seen = append(seen, "second") })
		if r.URL.Query().Get("fail") != "" {
			w.WriteHeader(422)
		}
	}))
	assert.Equal(t, 200, do(h, "POST", "/?name=kept", nil, "X-Tenant", a).Code)
	assert.Equal(t, 422, do(h, "POST", "/?name=dropped&fail=1", nil, "X-Tenant", a).Code)
	e.mgr.WaitAfterCommit()
	assert.Equal(t, []string{"kept:1", "second"}, seen)
	assert.Contains(t, e.logs.String(), "after-commit function panicked")
}

func TestSessionOutsideMiddleware(t *testing.T) {
	_, err := tenantctx.Session(context.Background()).Exec(context.Background(), "SELECT 1")
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
}

func TestMiddlewareNeedsResolver(t *testing.T) {
	e := newEnv(t, 1, tenant.Config{})
	assert.PanicsWithValue(t, "tenant.Middleware: Config.Resolver is nil", func() { tenant.Middleware(e.mgr) })
}

func TestBodyOfFailedAttemptIsDropped(t *testing.T) {
	a := newTenantName("bd")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, a)
	var attempts atomic.Int32
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := attempts.Add(1)
		w.Header().Set("X-Attempt", fmt.Sprint(n))
		_, _ = fmt.Fprintf(w, "attempt %d;", n)
		if n == 1 {
			_, err := tenantctx.Session(r.Context()).Exec(r.Context(), raise("40001", "could not serialize access"))
			assert.Error(t, err)
		}
	}))
	rec := do(h, "GET", "/", nil, "X-Tenant", a)
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "attempt 2;", rec.Body.String())
	assert.Equal(t, []string{"2"}, rec.Header().Values("X-Attempt"))
}
