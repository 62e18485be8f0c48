// Package tenantctx is what a handler reads from its request's context: the tenant's
// schema, the database session bound to it, and the calls that shape the end of the
// request (AfterCommit, RollbackOnly). tenant.Middleware and Manager.Run put them
// there; tests of a handler can with NewContext.
//
//	db := tenantctx.Session(r.Context()) // runs in the tenant's schema and transaction
//
// The package knows nothing of HTTP and holds no global state.
package tenantctx

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantkit/tenant/internal/scope"
)

// DB is the request's database session. It satisfies sqlc's pgx/v5 DBTX (Exec, Query,
// QueryRow) and adds SendBatch, CopyFrom and Begin (a savepoint inside the request's
// transaction). Everything runs in the tenant's transaction: the session never hands
// out its connection (a savepoint's and a result's Conn is nil, a savepoint's Prepare
// is refused, large objects are not available), and after a handler ends the
// transaction itself (ROLLBACK, COMMIT) every call fails instead of running on its own.
// It is safe for concurrent use: calls take turns on the connection, and none reaches
// it once the request ended (ErrSessionEnded).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ErrNoSession is returned by every method of the DB that Session gives for a context
// no tenant lifecycle (tenant.Middleware, Manager.Run) attached.
var ErrNoSession = errors.New("tenantctx: no tenant session in this context (is the route behind tenant.Middleware?)")

// ErrSessionEnded is returned by a DB used after its request's transaction ended: the
// response began to stream, or the request finished (a goroutine that outlived it).
var ErrSessionEnded = errors.New("tenantctx: the request's transaction has already ended (response streamed or request finished)")

// NewContext returns a context whose Session is db and whose Schema is schema, for
// testing a handler without the lifecycle (as chi.NewRouteContext is for routing):
// give it a pgx.Tx the test rolls back. Functions registered with AfterCommit in it
// never run.
func NewContext(ctx context.Context, schema string, db DB) context.Context {
	return scope.NewContext(ctx, &scope.Scope{Schema: schema, Session: db})
}

// Session returns the tenant's database session. It is never nil: outside a tenant
// lifecycle every method fails with ErrNoSession. The first use begins the
// transaction; a request that never calls it costs no connection.
func Session(ctx context.Context) DB {
	if s := scope.FromContext(ctx); s != nil {
		if db, ok := s.Session.(DB); ok && db != nil {
			return db
		}
	}
	return noSession{}
}

// Schema returns the tenant's schema name, or "" outside a tenant lifecycle.
func Schema(ctx context.Context) string {
	if s := scope.FromContext(ctx); s != nil {
		return s.Schema
	}
	return ""
}

// AfterCommit registers fn to run after the transaction commits, and only then: send
// mail or enqueue jobs here, never inside the handler, so nothing leaves for data that
// was rolled back. fn gets a context that is not cancelled with the request. Outside a
// tenant lifecycle it reports false and fn never runs.
func AfterCommit(ctx context.Context, fn func(context.Context)) bool {
	s := scope.FromContext(ctx)
	if s == nil {
		return false
	}
	s.AddAfterCommit(fn)
	return true
}

// RollbackOnly marks the transaction to be rolled back whatever the response status
// (a dry run, a preview). It reports false outside a tenant lifecycle.
func RollbackOnly(ctx context.Context) bool {
	s := scope.FromContext(ctx)
	if s == nil {
		return false
	}
	s.MarkRollbackOnly()
	return true
}
