// Package scope is the writing side of tenantctx: what a tenant lifecycle puts into a
// context for one attempt, and reads back at its end. Only this module reaches it, so
// no other package can forge the scope a lifecycle ends.
package scope

import (
	"context"
	"sync"
)

// Scope is one attempt of a tenant lifecycle: its schema, its session (a
// tenantctx.DB, held as any so that this package imports none), the functions
// registered to run after it committed, and the rollback-only mark.
type Scope struct {
	Schema  string
	Session any

	mu           sync.Mutex
	afterCommit  []func(context.Context)
	rollbackOnly bool
	sqlTx        any // the open database/sql transaction's owner (BeginSQLTx), or nil
}

type key struct{}

// NewContext returns a context carrying s.
func NewContext(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, key{}, s)
}

// IsKey reports whether k is the key FromContext asks a context for: a context of the
// lifecycle's own, which carries a Scope along with other values in one node, answers
// it with its Scope.
func IsKey(k any) bool {
	_, ok := k.(key)
	return ok
}

// FromContext returns the Scope in ctx, or nil.
func FromContext(ctx context.Context) *Scope {
	s, _ := ctx.Value(key{}).(*Scope)
	return s
}

// AddAfterCommit registers fn.
func (s *Scope) AddAfterCommit(fn func(context.Context)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterCommit = append(s.afterCommit, fn)
}

// AfterCommit returns the registered functions, in order.
func (s *Scope) AfterCommit() []func(context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]func(context.Context){}, s.afterCommit...)
}

// MarkRollbackOnly marks the transaction to be rolled back.
func (s *Scope) MarkRollbackOnly() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollbackOnly = true
}

// RollbackOnly reports whether MarkRollbackOnly was called.
func (s *Scope) RollbackOnly() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rollbackOnly
}

// BeginSQLTx marks a database/sql transaction (package tenantsql) open in the
// attempt, owned by owner, and reports false when one already is: two would nest as
// savepoints, and the outer one's rollback would undo the inner one's commit.
func (s *Scope) BeginSQLTx(owner any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sqlTx != nil {
		return false
	}
	s.sqlTx = owner
	return true
}

// SQLTx returns the owner of the database/sql transaction open in the attempt, or nil.
func (s *Scope) SQLTx() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sqlTx
}

// EndSQLTx marks the database/sql transaction ended.
func (s *Scope) EndSQLTx() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sqlTx = nil
}
