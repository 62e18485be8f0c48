package tenant_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// An after-commit function runs once the response is on the wire: one that blocks
// until the client has the whole response does not keep it from getting it. Its
// context ends after AfterCommitTimeout, and Close waits for it no longer than that.
func TestAfterCommitNeverDelaysTheResponse(t *testing.T) {
	a := newTenantName("hk")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader, AfterCommitTimeout: 300 * time.Millisecond}, a)
	received := make(chan struct{})
	var hookErr atomic.Value
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		insertItem(t, r, "mail-me")
		tenantctx.AfterCommit(r.Context(), func(ctx context.Context) {
			<-received // "send mail": slow, or stuck
			<-ctx.Done()
			hookErr.Store(ctx.Err())
		})
		w.WriteHeader(201)
		_, _ = io.WriteString(w, "created")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest("POST", srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("X-Tenant", a)
	client := &http.Client{Timeout: 10 * time.Second} // failing here means the hook held the response
	resp, err := client.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, "201 created", resp.Status[:3]+" "+string(body))
	assert.Equal(t, int64(7), resp.ContentLength, "the whole response, with its length")
	close(received)

	e.mgr.WaitAfterCommit()
	assert.Equal(t, context.DeadlineExceeded, hookErr.Load(), "its context ended after AfterCommitTimeout")
	assert.Equal(t, 1, e.items(t, a, "mail-me"))
}

// Close waits for after-commit functions still running, but no longer than
// AfterCommitTimeout: one that ignores its context does not hang a shutdown.
func TestCloseDoesNotWaitForeverForAfterCommit(t *testing.T) {
	a := newTenantName("hkc")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader, AfterCommitTimeout: 200 * time.Millisecond}, a)
	stuck := make(chan struct{})
	defer close(stuck)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenantctx.AfterCommit(r.Context(), func(context.Context) { <-stuck }) // ignores its context
	}))
	assert.Equal(t, 200, do(h, "POST", "/", nil, "X-Tenant", a).Code)
	closed := make(chan struct{})
	go func() { e.mgr.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a stuck after-commit function")
	}
	assert.Contains(t, e.logs.String(), "after-commit functions still running at Close")
}

// A request that succeeded runs its after-commit functions whether or not it queried
// (nothing to commit is not a failure); one that failed does not. Run likewise.
func TestAfterCommitWithoutAQuery(t *testing.T) {
	a := newTenantName("hkn")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	var ran atomic.Int32
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenantctx.AfterCommit(r.Context(), func(context.Context) { ran.Add(1) })
		if r.URL.Query().Get("fail") != "" {
			w.WriteHeader(400)
		}
	}))
	assert.Equal(t, 200, do(h, "POST", "/", nil, "X-Tenant", a).Code)
	assert.Equal(t, 400, do(h, "POST", "/?fail=1", nil, "X-Tenant", a).Code)
	e.mgr.WaitAfterCommit()
	assert.Equal(t, int32(1), ran.Load())

	require.NoError(t, e.mgr.Run(context.Background(), a, func(ctx context.Context) error {
		tenantctx.AfterCommit(ctx, func(context.Context) { ran.Add(1) })
		return nil
	}))
	assert.Equal(t, int32(2), ran.Load(), "Run runs them before it returns")
	require.NoError(t, e.mgr.Run(context.Background(), a, func(ctx context.Context) error {
		tenantctx.AfterCommit(ctx, func(context.Context) { ran.Add(1) })
		tenantctx.RollbackOnly(ctx)
		return nil
	}))
	assert.Equal(t, int32(2), ran.Load(), "not for RollbackOnly")
}
