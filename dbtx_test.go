package tenant_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// sqlcDBTX is the interface sqlc generates for pgx/v5 (with batch and copyfrom queries).
type sqlcDBTX interface {
	Exec(context.Context, string, ...interface{}) (pgconn.CommandTag, error)
	Query(context.Context, string, ...interface{}) (pgx.Rows, error)
	QueryRow(context.Context, string, ...interface{}) pgx.Row
	CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error)
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}

var _ sqlcDBTX = tenantctx.Session(context.Background())

// SendBatch, CopyFrom and Begin (a savepoint) all run in the request's transaction.
func TestSessionBatchCopySavepoint(t *testing.T) {
	a := newTenantName("bcs")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		db := tenantctx.Session(ctx)
		n, err := db.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"name"},
			pgx.CopyFromRows([][]any{{"copied1"}, {"copied2"}}))
		if !assert.NoError(t, err) {
			return
		}
		assert.Equal(t, int64(2), n)

		b := &pgx.Batch{}
		b.Queue("INSERT INTO items (name) VALUES ('batched')")
		b.Queue("SELECT count(*) FROM items")
		br := db.SendBatch(ctx, b)
		_, err = br.Exec()
		if !assert.NoError(t, err) {
			return
		}
		var count int
		if !assert.NoError(t, br.QueryRow().Scan(&count)) {
			return
		}
		if !assert.NoError(t, br.Close()) {
			return
		}
		assert.Equal(t, 3, count)

		sp, err := db.Begin(ctx)
		if !assert.NoError(t, err) {
			return
		}
		_, err = sp.Exec(ctx, "INSERT INTO items (name) VALUES ('undone')")
		if !assert.NoError(t, err) {
			return
		}
		assert.NoError(t, sp.Rollback(ctx)) // back to the savepoint, the request goes on
		if r.URL.Query().Get("fail") != "" {
			w.WriteHeader(400)
		}
	}))
	assert.Equal(t, 400, do(h, "POST", "/?fail=1", nil, "X-Tenant", a).Code)
	assert.Zero(t, e.count(t, `SELECT count(*) FROM "`+a+`".items`), "all of it rolled back together")
	assert.Equal(t, 200, do(h, "POST", "/", nil, "X-Tenant", a).Code)
	assert.Equal(t, 1, e.items(t, a, "copied2"))
	assert.Equal(t, 1, e.items(t, a, "batched"))
	assert.Zero(t, e.items(t, a, "undone"))
}

// A conflict reported inside a batch or while iterating rows counts as well.
func TestConflictSeenThroughBatchAndRows(t *testing.T) {
	a := newTenantName("cbr")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	for _, via := range []string{"batch", "rows"} {
		t.Run(via, func(t *testing.T) {
			var attempts atomic.Int32
			h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				db := tenantctx.Session(ctx)
				if attempts.Add(1) > 1 {
					return
				}
				// A function that fails on the second row: the error arrives during iteration.
				_, err := db.Exec(ctx, `CREATE FUNCTION pg_temp.raise_40001() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001'; END $$`)
				if !assert.NoError(t, err) {
					return
				}
				q := "SELECT CASE WHEN g = 2 THEN pg_temp.raise_40001() ELSE g END FROM generate_series(1, 3) g"
				switch via {
				case "batch":
					b := &pgx.Batch{}
					b.Queue(q)
					_ = db.SendBatch(ctx, b).Close()
				case "rows":
					rows, err := db.Query(ctx, q)
					if !assert.NoError(t, err) {
						return
					}
					for rows.Next() {
					}
					rows.Close() // the handler forgot rows.Err(): still seen
				}
				_, _ = fmt.Fprint(w, "ok?")
			}))
			assert.Equal(t, 200, do(h, "GET", "/", nil, "X-Tenant", a).Code)
			assert.Equal(t, int32(2), attempts.Load())
		})
	}
}

// A conflict inside a savepoint counts even when the handler rolls the savepoint back
// and carries on: the request runs again.
func TestConflictInsideSavepoint(t *testing.T) {
	a := newTenantName("csp")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	var attempts atomic.Int32
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		n := attempts.Add(1)
		sp, err := tenantctx.Session(ctx).Begin(ctx)
		if !assert.NoError(t, err) {
			return
		}
		inner, err := sp.Begin(ctx) // nested savepoints are watched too
		if !assert.NoError(t, err) {
			return
		}
		if n == 1 {
			_, err = inner.Exec(ctx, raise("40001", "could not serialize"))
			assert.Error(t, err)
		}
		if !assert.NoError(t, inner.Rollback(ctx)) {
			return
		}
		if !assert.NoError(t, sp.Commit(ctx)) {
			return
		}
		_, _ = fmt.Fprintf(w, "attempt %d", n)
	}))
	rec := do(h, "GET", "/", nil, "X-Tenant", a)
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "attempt 2", rec.Body.String())
}
