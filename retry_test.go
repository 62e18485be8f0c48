package tenant_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// Real server errors with the codes that call for a retry: the first attempt fails,
// the second runs with a fresh transaction and the same request body.
func TestRetryOnConflict(t *testing.T) {
	a := newTenantName("rt")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, a)
	for _, tc := range []struct{ code, msg string }{
		{"40001", "could not serialize access due to concurrent update"},
		{"40P01", "deadlock detected"},
		{"0A000", "cached plan must not change result type"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			var attempts, hooks atomic.Int32
			var bodies []string
			h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := attempts.Add(1)
				b, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(b))
				db := tenantctx.Session(r.Context())
				_, err := db.Exec(r.Context(), "INSERT INTO items (name) VALUES ($1)", string(b))
				if !assert.NoError(t, err) {
					return
				}
				tenantctx.AfterCommit(r.Context(), func(context.Context) { hooks.Add(1) })
				if n == 1 {
					_, err := db.Exec(r.Context(), raise(tc.code, tc.msg))
					assert.Error(t, err)
					http.Error(w, "the handler gave up", 500) // ignored: the request runs again
					return
				}
				_, _ = io.WriteString(w, "ok")
			}))
			name := newTenantName("body")
			rec := do(h, "POST", "/", strings.NewReader(name), "X-Tenant", a)
			assert.Equal(t, 200, rec.Code)
			assert.Equal(t, "ok", rec.Body.String())
			assert.Equal(t, int32(2), attempts.Load())
			assert.Equal(t, []string{name, name}, bodies, "the body is replayed")
			e.mgr.WaitAfterCommit()
			assert.Equal(t, int32(1), hooks.Load())
			assert.Equal(t, 1, e.items(t, a, name), "only the second attempt's insert is kept")
		})
	}
}

// Other errors with code 0A000 are not conflicts: the handler's answer stands.
func TestNoRetryOnOtherErrors(t *testing.T) {
	a := newTenantName("nr")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, a)
	var attempts atomic.Int32
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		_, err := tenantctx.Session(r.Context()).Exec(r.Context(), raise("0A000", "feature not supported"))
		assert.Error(t, err)
		http.Error(w, "nope", http.StatusNotImplemented)
	}))
	rec := do(h, "GET", "/", nil, "X-Tenant", a)
	assert.Equal(t, 501, rec.Code)
	assert.Equal(t, int32(1), attempts.Load())
}

func TestRetriesExhausted(t *testing.T) {
	a := newTenantName("ex")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader, Attempts: 4}, a)
	var attempts, hooks atomic.Int32
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		tenantctx.AfterCommit(r.Context(), func(context.Context) { hooks.Add(1) })
		_, _ = tenantctx.Session(r.Context()).Exec(r.Context(), raise("40001", "could not serialize"))
		_, _ = io.WriteString(w, "swallowed the error and said ok") // a 2xx must not escape
	}))
	rec := do(h, "POST", "/", strings.NewReader("x"), "X-Tenant", a)
	assert.Equal(t, 409, rec.Code)
	assert.Equal(t, "conflict, please retry\n", rec.Body.String())
	assert.Equal(t, int32(4), attempts.Load())
	e.mgr.WaitAfterCommit()
	assert.Zero(t, hooks.Load())
}

// A body over MaxBodyBytes cannot be replayed: the request runs once, also when its
// response began to stream (a flush) before the handler read the body: whether
// another attempt may follow is decided once the handler returned.
func TestLongBodyRunsOnce(t *testing.T) {
	a := newTenantName("lb")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader, MaxBodyBytes: 8}, a)
	for _, flushFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("flush first: ", flushFirst), func(t *testing.T) {
			var attempts atomic.Int32
			var got string
			h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				attempts.Add(1)
				_, _ = tenantctx.Session(r.Context()).Exec(r.Context(), raise("40001", "could not serialize"))
				if flushFirst {
					_ = http.NewResponseController(w).Flush()
				}
				b, _ := io.ReadAll(r.Body)
				got = string(b)
				_, _ = io.WriteString(w, "got:"+got)
			}))
			rec := do(h, "POST", "/", strings.NewReader("a body of more than eight bytes"), "X-Tenant", a)
			assert.Equal(t, "409 conflict, please retry\n", fmt.Sprint(rec.Code, " ", rec.Body.String()))
			assert.Equal(t, int32(1), attempts.Load())
			assert.Equal(t, "a body of more than eight bytes", got, "the handler still reads the whole body")
		})
	}
}

// Many concurrent read-modify-write increments of one counter under SERIALIZABLE
// (16 clients x 25): the counter ends equal to the number of 2xx answers (every 2xx
// committed, nothing else did), and retries within the budget win: at most 2% of the
// requests answer 409, with pools of 4 and 16 connections.
func TestConcurrentIncrementsSerializable(t *testing.T) {
	for _, conns := range []int32{4, 16} {
		t.Run(fmt.Sprint("pool=", conns), func(t *testing.T) {
			a := newTenantName("ctr")
			e := newEnv(t, conns, tenant.Config{Resolver: byHeader}, a)
			ok, conflict := hammer(t, tenant.Middleware(e.mgr)(incrementCounter), a, 16, 25)
			final := e.count(t, `SELECT value FROM "`+a+`".counter WHERE id = 1`)
			t.Logf("2xx=%d 409=%d retries=%d", ok, conflict, strings.Count(e.logs.String(), "transaction conflict, running again"))
			assert.Equal(t, ok, final)
			assert.Equal(t, 16*25, ok+conflict)
			assert.LessOrEqual(t, conflict, 16*25*2/100)
		})
	}
}

// countingReader counts what is read from it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// The body is read as the handler reads it, not before: a handler that answers without
// reading it leaves Expect: 100-continue unanswered, and the client never sends it.
func TestBodyReadOnlyAsTheHandlerReads(t *testing.T) {
	a := newTenantName("exc")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "log in first", http.StatusUnauthorized)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := &countingReader{r: strings.NewReader(strings.Repeat("x", 1<<20))}
	req, err := http.NewRequest("POST", srv.URL, body)
	require.NoError(t, err)
	req.ContentLength = 1 << 20
	req.Header.Set("X-Tenant", a)
	req.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 10 * time.Second}}
	resp, err := client.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
	assert.Zero(t, body.n.Load(), "the body was never asked for")
}

// An attempt that read part of the body runs again with all of it: what it read, then
// the rest.
func TestRetryAfterAPartialRead(t *testing.T) {
	a := newTenantName("prt")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	var attempts atomic.Int32
	sent := strings.Repeat("0123456789", 1000)
	var got string
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			_, _ = io.ReadFull(r.Body, make([]byte, 4))
			_, _ = tenantctx.Session(r.Context()).Exec(r.Context(), raise("40001", "could not serialize"))
			return
		}
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	rec := do(h, "POST", "/", strings.NewReader(sent), "X-Tenant", a)
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, int32(2), attempts.Load())
	assert.Equal(t, sent, got)
}
