// Package tenantctx carries a request's tenant through its context: the schema, the
// database session bound to it, the negotiated locale, after-commit functions and the
// rollback-only mark. tenant.Middleware and Manager.Run attach them; handlers read them.
//
//	db := tenantctx.Session(r.Context()) // runs in the tenant's schema and transaction
//
// The package knows nothing of HTTP and holds no global state.
package tenantctx

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/text/language"
)

// DB is the request's database session. It satisfies sqlc's pgx/v5 DBTX (Exec, Query,
// QueryRow) and adds SendBatch, CopyFrom and Begin (a savepoint inside the request's
// transaction). Everything runs in the tenant's transaction: the session never hands
// out its connection (a savepoint's and a result's Conn is nil, a savepoint's Prepare
// is refused, large objects are not available), and after a handler ends the
// transaction itself (ROLLBACK, COMMIT) every call fails instead of running on its own.
// It is safe for concurrent use: calls take turns on the connection, and none reaches
// it once the request ended.
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

// Scope is one attempt of a tenant lifecycle: what Session, Schema, AfterCommit and
// RollbackOnly see. Lifecycle owners make one per attempt with NewScope; handlers
// never need it.
type Scope struct {
	schema  string
	session DB

	mu           sync.Mutex
	afterCommit  []func(context.Context)
	rollbackOnly bool
}

// NewScope returns a Scope for the schema whose queries go to session.
func NewScope(schema string, session DB) *Scope {
	return &Scope{schema: schema, session: session}
}

// AfterCommitFuncs returns the functions registered with AfterCommit, in order.
func (s *Scope) AfterCommitFuncs() []func(context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(([]func(context.Context))(nil), s.afterCommit...)
}

// IsRollbackOnly reports whether RollbackOnly was called.
func (s *Scope) IsRollbackOnly() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rollbackOnly
}

type scopeKey struct{}
type localeKey struct{}
type defaultLocaleKey struct{}

// WithScope returns a context carrying s.
func WithScope(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// ScopeFrom returns the Scope in ctx, if any.
func ScopeFrom(ctx context.Context) (*Scope, bool) {
	s, ok := ctx.Value(scopeKey{}).(*Scope)
	return s, ok
}

// Session returns the tenant's database session. It is never nil: outside a tenant
// lifecycle every method fails with ErrNoSession. The first use begins the
// transaction; a request that never calls it costs no connection.
func Session(ctx context.Context) DB {
	if s, ok := ScopeFrom(ctx); ok && s.session != nil {
		return s.session
	}
	return noSession{}
}

// Schema returns the tenant's schema name, or "" outside a tenant lifecycle.
func Schema(ctx context.Context) string {
	if s, ok := ScopeFrom(ctx); ok {
		return s.schema
	}
	return ""
}

// AfterCommit registers fn to run after the transaction commits, and only then: send
// mail or enqueue jobs here, never inside the handler, so nothing leaves for data that
// was rolled back. fn gets a context that is not cancelled with the request. Outside a
// tenant lifecycle it reports false and fn never runs.
func AfterCommit(ctx context.Context, fn func(context.Context)) bool {
	s, ok := ScopeFrom(ctx)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterCommit = append(s.afterCommit, fn)
	return true
}

// RollbackOnly marks the transaction to be rolled back whatever the response status
// (a dry run, a preview). It reports false outside a tenant lifecycle.
func RollbackOnly(ctx context.Context) bool {
	s, ok := ScopeFrom(ctx)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollbackOnly = true
	return true
}

// WithLocale returns a context carrying the negotiated locale.
func WithLocale(ctx context.Context, tag language.Tag) context.Context {
	return context.WithValue(ctx, localeKey{}, tag)
}

// WithDefaultLocale returns a context carrying the application's default locale, the
// last fallback of translated texts.
func WithDefaultLocale(ctx context.Context, tag language.Tag) context.Context {
	return context.WithValue(ctx, defaultLocaleKey{}, tag)
}

// DefaultLocale returns the application's default locale, or language.Und.
func DefaultLocale(ctx context.Context) language.Tag {
	if t, ok := ctx.Value(defaultLocaleKey{}).(language.Tag); ok {
		return t
	}
	return language.Und
}

// Locale returns the request's locale, or language.Und when none was negotiated.
func Locale(ctx context.Context) language.Tag {
	if t, ok := ctx.Value(localeKey{}).(language.Tag); ok {
		return t
	}
	return language.Und
}
