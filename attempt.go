package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/go-chi/chi/v5"

	"github.com/tenantkit/tenant/internal/scope"
)

// attempt is one run of a handler (Middleware) or of Run's function: its session, the
// scope the application's code sees through tenantctx, the context carrying both, and
// how its end went. end is the one place an attempt ends, for Middleware and Run.
//
// The scope, the session and the context live in the attempt itself: an attempt of a
// request that never queries costs this allocation, no more (Middleware's
// httpAttempt adds what the handler gets to it).
type attempt struct {
	m     *Manager
	name  string
	sess  session // in the attempt: one allocation less
	scope scope.Scope
	// node is the context the application's code gets (context): one node over the
	// parent's.
	node attemptContext
	// retries knows whether another attempt may follow; asked only when one would be
	// wanted.
	retries *retries

	// hooksStarted: after-commit functions were started, and may still run.
	hooksStarted bool

	ended     bool  // end ran: the fields below are its verdict
	again     bool  // the attempt should run again, if another may follow
	exhausted error // the error when it should but none may
	err       error // otherwise: the lifecycle error, nil when the attempt's work stands
}

// attemptContext is an attempt's context: one node over the request's (or Run's)
// context that answers for the scope, the locale and, in a chi router, the attempt's
// own routing state, where context.WithValue would take a node (and an allocation)
// each.
type attemptContext struct {
	context.Context
	scope *scope.Scope
	// locale answers for the locale package's key alone (see Manager.localeContext).
	locale context.Context
	// route is the attempt's copy of chi's routing state; nil outside chi.
	route *chi.Context
}

// Value answers for the attempt's values, then asks the parent.
func (c *attemptContext) Value(key any) any {
	switch {
	case scope.IsKey(key):
		return c.scope
	case c.route != nil && key == chi.RouteCtxKey:
		return c.route
	}
	if v := c.locale.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}

// init makes a's session and scope, and the context that carries them with the
// locale (a context answering for it alone: Manager.localeContext) over parent: what
// Middleware and Run give the application's code.
func (a *attempt) init(m *Manager, parent context.Context, b *binding, locale context.Context, retries *retries) {
	a.m, a.name, a.retries = m, b.name, retries
	m.initSession(&a.sess, b)
	a.scope.Schema, a.scope.Session = b.name, &a.sess
	a.node = attemptContext{Context: parent, scope: &a.scope, locale: locale}
}

// context is the context the application's code gets.
func (a *attempt) context() context.Context { return &a.node }

// binding is what the next attempt starts from: refreshed when a migration moved the
// tenant's version under this one.
func (a *attempt) binding() *binding {
	a.sess.mu.Lock()
	defer a.sess.mu.Unlock()
	return a.sess.b
}

// end ends the attempt's transaction, once: it commits when ok (the handler answered
// below 400, Run's function returned nil) and the code did not call RollbackOnly, and
// rolls back otherwise. It reports whether the attempt should run again, or the error
// it fails with. Whether another attempt may follow is asked at each call, not only
// the first: a response that began to stream ends the transaction while its handler
// still runs, and may still read the body past what can be replayed.
func (a *attempt) end(ok bool) (retry bool, err error) {
	if !a.ended {
		a.ended = true
		a.again, a.exhausted, a.err = a.decide(ok && !a.scope.RollbackOnly())
	}
	switch {
	case a.again && !a.retries.last():
		return true, nil
	case a.again:
		return false, a.exhausted
	}
	return false, a.err
}

// decide ends the transaction and judges the outcome. A transaction that saw a
// conflict (a serialization failure, deadlock, stale plan, missing cached statement)
// or lost its connection rolls back and should run again; when none may follow it
// fails with ErrConflict, ErrPreparedStatements or ErrUnavailable. One that could not
// begin fails with why. Otherwise it commits or rolls back as asked: a COMMIT that met
// a conflict, or whose connection died before it committed, should run again (or
// ErrConflict, ErrUnavailable); any other failed COMMIT, one whose outcome is unknown
// included, is ErrCommitFailed. A transaction the handler ended is ErrTransactionLost
// (with ErrCommitFailed when it was to commit). A failed ROLLBACK is only logged:
// nothing was to be kept.
func (a *attempt) decide(commit bool) (again bool, exhausted, err error) {
	s := &a.sess
	conflict, lostStatement, beginErr := s.state()
	if conflict || beginErr != nil {
		commit = false
	}
	err = s.finish(a.context(), commit)
	switch {
	case errors.Is(err, ErrTransactionLost) && commit:
		return false, nil, fmt.Errorf("%w: %w", ErrCommitFailed, err)
	case errors.Is(err, ErrTransactionLost):
		return false, nil, err
	case errors.Is(err, errRollbackFailed):
		a.m.log.WarnContext(a.context(), "tenant: rollback failed", slog.String("tenant", a.name), slog.Any("error", err))
		err = nil
	}
	switch again = conflict || err != nil && (errors.Is(err, errRerun) || isRetryable(err)); {
	case !again && beginErr != nil:
		return false, nil, beginErr
	case !again && err != nil:
		return false, nil, commitFailed(err)
	case !again:
		return false, nil, nil
	case conflict && lostStatement:
		return true, ErrPreparedStatements, nil
	case s.lostConnection() || errors.Is(err, errRerun):
		return true, fmt.Errorf("%w: the connection died, and retries are exhausted", ErrUnavailable), nil
	case err != nil:
		return true, fmt.Errorf("%w: retries exhausted: %w", ErrConflict, err), nil
	}
	return true, fmt.Errorf("%w: retries exhausted", ErrConflict), nil
}

// succeeded reports whether the attempt's work stands, so its after-commit functions
// run: its transaction committed, or it began none and ok (a success, not
// RollbackOnly).
func (a *attempt) succeeded(ok bool) bool {
	if began, committed := a.sess.outcome(); began {
		return committed
	}
	return ok && !a.scope.RollbackOnly()
}
