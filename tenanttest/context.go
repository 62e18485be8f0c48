package tenanttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/scope"
	"github.com/tenantkit/tenant/tenantctx"
)

// Context returns a context whose tenantctx.Session runs in the tenant's schema, in one
// transaction that is rolled back when the test ends: what the test and the code it
// calls (a job, a handler given a request with this context) write is visible
// through the context during the test and gone after it. It is Begin over the test's
// context (t.Context, cancelled as the test function returns) with end registered as
// a cleanup. The tenant must exist (Tenant) unless the Manager's Admission provisions
// it; an unknown or invalid name fails the test.
//
// The transaction holds one of the pool's connections from its first query until the
// test ends: with a pool of one connection, make no request through the Middleware
// (which needs another) while such a context is in use. Such a request also runs in a
// transaction of its own, which does not see what the context wrote.
func Context(t testing.TB, mgr *tenant.Manager, name string, opts ...tenant.RunOption) context.Context {
	t.Helper()
	ctx, end, err := Begin(t.Context(), mgr, name, opts...)
	if err != nil {
		t.Fatalf("tenanttest: context for tenant %q: %v", name, err)
	}
	t.Cleanup(func() {
		if err := end(); err != nil {
			t.Errorf("tenanttest: tenant %q: %v", name, err)
		}
	})
	return ctx
}

// Begin starts what Context gives a test, without one: it returns a context with the
// tenant's session, whose transaction the returned end rolls back (and never
// commits), and end must be called. It is for Example functions and for helpers that
// are no test. The context is cancelled by end, and ctx bounds the session: when ctx
// ends first, the transaction is rolled back then, and later calls fail
// (tenantctx.ErrSessionEnded, or the context's error).
//
// It runs Manager.Run on a goroutine of its own, whose function marks the transaction
// rollback-only (tenantctx.RollbackOnly) and waits for end: that goroutine never
// touches the session, only the code given the context does. The lifecycle is Run's:
// the session is lazy (no connection before the first query), Run's isolation,
// locale (opts) and statement handling apply. Two differences follow from rolling
// back. Functions registered with tenantctx.AfterCommit never run (AfterCommitFuncs
// returns them, for a test to check or call). A conflict (serialization failure,
// deadlock) is not run again: the statement that met it returns the error, the
// transaction is then aborted (later statements fail), and end reports nothing
// more, as the code under test already saw it.
//
// end waits for the rollback and returns what went wrong with it, or nil: an error
// matching tenant.ErrTransactionLost when the code under test ended the transaction
// itself (COMMIT or ROLLBACK through the session). Calling end again returns the same.
func Begin(ctx context.Context, mgr *tenant.Manager, name string, opts ...tenant.RunOption) (context.Context, func() error, error) {
	handed := make(chan context.Context)
	release := make(chan struct{})
	done := make(chan error, 1)
	var attempts atomic.Int32
	go func() {
		done <- mgr.Run(ctx, name, func(ctx context.Context) error {
			if attempts.Add(1) > 1 {
				return nil // a rerun after a conflict: nothing queried, nothing to hand out
			}
			tenantctx.RollbackOnly(ctx) // never commits, whatever this returns
			handed <- ctx
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil // not an error: Run then reports a transaction the test ended
		}, opts...)
	}()
	var runCtx context.Context
	select {
	case runCtx = <-handed:
	case err := <-done: // refused before fn: invalid or unknown tenant, database down
		return nil, nil, fmt.Errorf("tenanttest: begin: %w", err)
	}
	testCtx, cancel := context.WithCancel(runCtx)
	var (
		once   sync.Once
		endErr error
	)
	end := func() error {
		once.Do(func() {
			cancel() // the test's context only: the attempt's own is Run's, so Run ends as planned
			close(release)
			endErr = <-done
			switch {
			case tenant.IsConflict(endErr): // the test saw it from the statement that met it
				endErr = nil
			case ctx.Err() != nil && errors.Is(endErr, ctx.Err()): // ctx ended first: rolled back then
				endErr = nil
			case endErr != nil:
				endErr = fmt.Errorf("tenanttest: end: %w", endErr)
			}
		})
		return endErr
	}
	return testCtx, end, nil
}

// AfterCommitFuncs returns the functions the code registered with
// tenantctx.AfterCommit in ctx (a Context or Begin context, or a request's), in
// order. A test's transaction never commits, so they never run by themselves: a test
// checks that they were registered, or calls them to test what they do. It returns
// nil for a context without a tenant session.
func AfterCommitFuncs(ctx context.Context) []func(context.Context) {
	s := scope.FromContext(ctx)
	if s == nil {
		return nil
	}
	return s.AfterCommit()
}
