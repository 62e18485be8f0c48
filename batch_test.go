package tenant_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// Batches the session sends itself, on a pool of one: statements described inside
// each tenant's transaction (two tenants at different schema versions, one batch
// text), callbacks run as pgx runs them, a failing query stops the rest, and a query
// whose arguments cannot be encoded keeps the whole batch from running.
func TestBatches(t *testing.T) {
	a, b := newTenantName("bta"), newTenantName("btb")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader})
	provisionAt(t, e, eventsV1, a)
	provisionAt(t, e, eventsV2, b)
	batch := func(fn func(ctx context.Context, db tenantctx.DB) error) http.Handler {
		return tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := fn(r.Context(), tenantctx.Session(r.Context())); err != nil {
				http.Error(w, err.Error(), 500)
			}
		}))
	}
	insert := "INSERT INTO events (owner, at, amount, code) VALUES ($1, $2, $3, $4)"

	t.Run("each tenant's types", func(t *testing.T) {
		var counted int
		h := batch(func(ctx context.Context, db tenantctx.DB) error {
			bt := &pgx.Batch{}
			bt.Queue(insert, "batch", eventAt, eventAmount, "9")
			bt.Queue("SELECT count(*) FROM events WHERE code = $1", "9").QueryRow(func(row pgx.Row) error { return row.Scan(&counted) })
			return db.SendBatch(ctx, bt).Close()
		})
		for round := 1; round <= 2; round++ {
			for _, name := range []string{a, b, a, b} {
				require.Equal(t, 200, do(h, "POST", "/", nil, "X-Tenant", name).Code)
			}
			epoch, amount, code := storedEvent(t, e, a)
			assert.Equal(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Unix(), epoch, "v1 stores the wall clock")
			assert.Equal(t, "1.2345678901234568e+16", amount)
			assert.Equal(t, "9", code)
			epoch, amount, code = storedEvent(t, e, b)
			assert.Equal(t, eventAt.Unix(), epoch, "v2 stores the instant")
			assert.Equal(t, eventAmount, amount, "v2 stores every digit")
			assert.Equal(t, "9", code)
			assert.Equal(t, 2*round, counted, "b counts its own events only")
		}
		assert.Equal(t, int64(2), e.roundTrips(func() { assert.Equal(t, 200, do(h, "POST", "/", nil, "X-Tenant", a).Code) }))
	})

	t.Run("a failed query stops the rest", func(t *testing.T) {
		var second error
		h := batch(func(ctx context.Context, db tenantctx.DB) error {
			bt := &pgx.Batch{}
			bt.Queue("SELECT 1/0")
			bt.Queue(insert, "after-failure", eventAt, eventAmount, "10")
			br := db.SendBatch(ctx, bt)
			_, first := br.Exec()
			_, second = br.Exec()
			_ = br.Close()
			return first
		})
		assert.Equal(t, 500, do(h, "POST", "/", nil, "X-Tenant", a).Code)
		assert.Error(t, second)
		assert.Zero(t, e.count(t, `SELECT count(*) FROM "`+a+`".events WHERE owner = 'after-failure'`))
	})

	t.Run("arguments that cannot be encoded: nothing runs", func(t *testing.T) {
		var closeErr error
		h := batch(func(ctx context.Context, db tenantctx.DB) error {
			bt := &pgx.Batch{}
			bt.Queue(insert, "not-run", eventAt, eventAmount, "11")
			bt.Queue(insert, "not-run", eventAt, eventAmount) // one argument short
			closeErr = db.SendBatch(ctx, bt).Close()
			return nil
		})
		assert.Equal(t, 200, do(h, "POST", "/", nil, "X-Tenant", a).Code)
		assert.ErrorContains(t, closeErr, "expected 4 arguments, got 3")
		assert.Zero(t, e.count(t, `SELECT count(*) FROM "`+a+`".events WHERE owner = 'not-run'`))
	})
}

// A batch query's callback that calls the session gets an error, as pgx answers for
// a connection whose batch is open, instead of waiting forever for the batch's own
// lock (the request used to hang); the batch and the request end.
func TestBatchCallbackCallingTheSession(t *testing.T) {
	a := newTenantName("bcb")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	var inner error
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		b := &pgx.Batch{}
		b.Queue("SELECT value FROM counter WHERE id = $1", 1).QueryRow(func(row pgx.Row) error {
			var v int
			if err := row.Scan(&v); err != nil {
				return err
			}
			_, inner = db.Exec(r.Context(), "UPDATE counter SET value = $1 WHERE id = 1", v+1)
			return nil
		})
		assert.NoError(t, db.SendBatch(r.Context(), b).Close())
	}))
	done := make(chan int, 1)
	go func() { done <- do(h, "POST", "/", nil, "X-Tenant", a).Code }()
	select {
	case code := <-done:
		assert.Equal(t, 200, code)
	case <-time.After(10 * time.Second):
		t.Fatal("the request hangs")
	}
	assert.ErrorContains(t, inner, "conn busy")
	assert.Zero(t, e.count(t, `SELECT value FROM "`+a+`".counter WHERE id = 1`))
}

// A table changed outside the migrations (its result type changed under a prepared
// statement) fails a batch's statement with "cached plan must not change result
// type": the request runs again, and the statement, forgotten, is prepared afresh,
// so it and the requests after it succeed rather than fail until it is evicted.
func TestBatchStatementStaleAfterAnAlter(t *testing.T) {
	a := newTenantName("bst")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	ctx := context.Background()
	var got string
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := &pgx.Batch{}
		b.Queue("SELECT value FROM counter WHERE id = $1", 1).QueryRow(func(row pgx.Row) error {
			var v any
			err := row.Scan(&v)
			got = fmt.Sprintf("%T %v", v, v)
			return err
		})
		if err := tenantctx.Session(r.Context()).SendBatch(r.Context(), b).Close(); err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
	require.Equal(t, 200, do(h, "GET", "/", nil, "X-Tenant", a).Code)
	require.Equal(t, "int32 0", got)
	_, err := e.admin.Exec(ctx, `ALTER TABLE "`+a+`".counter ALTER value TYPE bigint`)
	require.NoError(t, err)
	for i := range 3 {
		rec := do(h, "GET", "/", nil, "X-Tenant", a)
		require.Equal(t, 200, rec.Code, "request %d: %s", i, rec.Body)
		assert.Equal(t, "int64 0", got, "request %d", i)
	}
}

// A batch query's callback that panics ends the request like any panic: its end does
// not wait forever for the batch to close, and the connection goes back to the pool.
func TestBatchCallbackPanics(t *testing.T) {
	a := newTenantName("bcp")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := &pgx.Batch{}
		b.Queue("SELECT value FROM counter WHERE id = $1", 1).QueryRow(func(pgx.Row) error { panic("boom") })
		_ = tenantctx.Session(r.Context()).SendBatch(r.Context(), b).Close()
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		do(h, "POST", "/", nil, "X-Tenant", a)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the request hangs")
	}
	assert.Eventually(t, func() bool { return e.pool.Stat().AcquiredConns() == 0 }, 5*time.Second, 10*time.Millisecond,
		"the connection goes back (pgxpool releases one left busy in the background)")
}
