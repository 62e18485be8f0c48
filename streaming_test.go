package tenant_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// serve runs h on a real server and returns a GET's status and body for tenant a.
func serve(t *testing.T, h http.Handler, a string) (int, string) {
	t.Helper()
	resp, body := serveMethod(t, h, "GET", a)
	return resp.StatusCode, body
}

// serveMethod serves h on a real server and sends it one request for tenant a: the response
// (its body read) and the body.
func serveMethod(t *testing.T, h http.Handler, method, a string) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(method, srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("X-Tenant", a)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// Flush commits first, then streams; later session use fails with a clear error.
func TestFlushCommitsThenStreams(t *testing.T) {
	a := newTenantName("fl")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	name := newTenantName("item")
	var visibleAtFlush int
	var laterErr error
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		_, err := db.Exec(r.Context(), "INSERT INTO items (name) VALUES ($1)", name)
		if !assert.NoError(t, err) {
			return
		}
		_, _ = io.WriteString(w, "first;")
		if !assert.NoError(t, http.NewResponseController(w).Flush()) {
			return
		}
		visibleAtFlush = e.items(t, a, name)
		_, laterErr = db.Exec(r.Context(), "SELECT 1")
		_, _ = io.WriteString(w, "second")
	}))
	code, body := serve(t, h, a)
	assert.Equal(t, 200, code)
	assert.Equal(t, "first;second", body)
	assert.Equal(t, 1, visibleAtFlush, "committed before the first byte was flushed")
	assert.ErrorIs(t, laterErr, tenantctx.ErrSessionEnded)
}

func TestLargeResponseStreams(t *testing.T) {
	a := newTenantName("lg")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader, BufferBytes: 64}, a)
	name := newTenantName("item")
	var visible int
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		insertItem(t, r, name)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, strings.Repeat("a", 50)) // buffered
		_, _ = io.WriteString(w, strings.Repeat("b", 50)) // over the limit: commit, stream
		visible = e.items(t, a, name)
	}))
	code, body := serve(t, h, a)
	assert.Equal(t, 200, code)
	assert.Equal(t, strings.Repeat("a", 50)+strings.Repeat("b", 50), body)
	assert.Equal(t, 1, visible)
}

// An error page too large to buffer still rolls back before it streams.
func TestLargeErrorResponseRollsBack(t *testing.T) {
	a := newTenantName("le")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader, BufferBytes: 16}, a)
	name := newTenantName("item")
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		insertItem(t, r, name)
		w.WriteHeader(500)
		_, _ = io.WriteString(w, strings.Repeat("error ", 20))
	}))
	code, _ := serve(t, h, a)
	assert.Equal(t, 500, code)
	assert.Equal(t, 0, e.items(t, a, name))
}

func TestHijackCommitsFirst(t *testing.T) {
	a := newTenantName("hj")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	name := newTenantName("item")
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		insertItem(t, r, name)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		defer conn.Close()
		msg := fmt.Sprintf("visible=%d", e.items(t, a, name))
		_, _ = fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(msg), msg)
		_ = buf.Flush()
	}))
	code, body := serve(t, h, a)
	assert.Equal(t, 200, code)
	assert.Equal(t, "visible=1", body)
}

// Unwrap lets http.ResponseController reach the server's writer for deadlines.
func TestResponseControllerDeadlines(t *testing.T) {
	a := newTenantName("rc")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		assert.NoError(t, rc.SetWriteDeadline(time.Now().Add(time.Minute)))
		assert.NoError(t, rc.SetReadDeadline(time.Now().Add(time.Minute)))
		_, _ = io.WriteString(w, "ok")
	}))
	code, body := serve(t, h, a)
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok", body)
}

// Streamed server-sent events: every flush reaches the client as it happens.
func TestFlushReachesClient(t *testing.T) {
	a := newTenantName("sse")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	step := make(chan struct{})
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-step
		_, _ = io.WriteString(w, "data: 2\n\n")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("X-Tenant", a)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: 1\n", line, "the first event arrived before the handler finished")
	close(step)
}

// A handler that ignores a serialization failure and flushes a 200 must not stream
// success for rolled-back data: nothing has been sent yet, so the request runs again
// (or answers 409 when attempts run out).
func TestConflictBeforeFlushRunsAgain(t *testing.T) {
	for _, tc := range []struct {
		attempts int
		code     int
		body     string
	}{{attempts: 3, code: 200, body: "attempt 2"}, {attempts: 1, code: 409, body: "conflict, please retry\n"}} {
		t.Run(fmt.Sprint("attempts=", tc.attempts), func(t *testing.T) {
			a := newTenantName("cfl")
			e := newEnv(t, 2, tenant.Config{Resolver: byHeader, Attempts: tc.attempts}, a)
			var n atomic.Int32
			h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				attempt := n.Add(1)
				if attempt == 1 {
					_, _ = tenantctx.Session(r.Context()).Exec(r.Context(), raise("40001", "could not serialize"))
				}
				_, _ = fmt.Fprintf(w, "attempt %d", attempt)
				w.(http.Flusher).Flush()
			}))
			code, body := serve(t, h, a)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.body, body)
		})
	}
}

// After a stream failed (its COMMIT did), whether the body outgrew the buffer or the
// handler flushed, what the handler still writes reaches nobody: the client gets the
// lifecycle's 500 and nothing else.
func TestNothingWrittenAfterAFailedStream(t *testing.T) {
	a := newTenantName("lsf")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader, BufferBytes: 64}, a)
	for _, tc := range []struct {
		name   string
		stream func(w http.ResponseWriter) error
	}{
		{"over the buffer", func(w http.ResponseWriter) error {
			_, err := io.WriteString(w, strings.Repeat("x", 100))
			return err
		}},
		{"a flush", func(w http.ResponseWriter) error {
			_, _ = io.WriteString(w, "x")
			return http.NewResponseController(w).Flush()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lateErr error
			h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "INSERT INTO pending VALUES (1), (1)") // fails at COMMIT
				if !assert.NoError(t, err) {
					return
				}
				w.WriteHeader(201)
				assert.Error(t, tc.stream(w), "COMMIT failed: nothing streams")
				w.Header().Set("X-Late", "1")
				w.WriteHeader(http.StatusTeapot)
				_, lateErr = io.WriteString(w, "late")
			}))
			resp, body := serveMethod(t, h, "POST", a)
			assert.Equal(t, "500 commit failed\n", fmt.Sprint(resp.StatusCode, " ", body))
			assert.Empty(t, resp.Header.Get("X-Late"))
			assert.Error(t, lateErr, "a write after the failure says so")
		})
	}
}

// An invalid status rolls back: it panics where the handler sets it, before COMMIT.
func TestInvalidStatusRollsBack(t *testing.T) {
	a := newTenantName("ist")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	name := newTenantName("item")
	r := chi.NewRouter()
	r.Use(chimw.Recoverer)
	r.Use(tenant.Middleware(e.mgr))
	r.Post("/", func(w http.ResponseWriter, r *http.Request) {
		insertItem(t, r, name)
		w.WriteHeader(42)
	})
	rec := do(r, "POST", "/", nil, "X-Tenant", a)
	assert.Equal(t, 500, rec.Code, "the recoverer answered")
	assert.Zero(t, e.items(t, a, name), "rolled back")
	assert.Zero(t, e.pool.Stat().AcquiredConns())
}
