package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"golang.org/x/text/language"
)

// RunOption changes one Manager.Run.
type RunOption func(*runSettings)

type runSettings struct {
	locale language.Tag
}

// WithLocale sets the locale tenantctx.Locale returns inside Run (default: the first
// configured locale).
func WithLocale(tag language.Tag) RunOption {
	return func(s *runSettings) { s.locale = tag }
}

// Run gives jobs, CLIs and tests the request lifecycle without HTTP: it validates and
// admits the tenant, runs fn with a context carrying the tenant's lazy session, and
// commits when fn returns nil, rolls back when it returns an error or panics (the
// panic goes on). fn's error is returned unchanged, except after a conflict: a
// serialization failure, deadlock or stale plan (seen by the session even when fn
// swallowed it) runs fn again, within Config.RetryTimeout (or ctx's deadline) and
// Config.Attempts, and when they run out Run returns an error matching ErrConflict
// (and wrapping fn's error, if any); IsConflict reports it. A connection that died
// before COMMIT ran also runs fn again (ErrUnavailable when none may follow). Functions registered with tenantctx.AfterCommit run after the commit
// (or, when fn never queried, after fn succeeded), before Run returns.
func (m *Manager) Run(ctx context.Context, name string, fn func(ctx context.Context) error, opts ...RunOption) error {
	settings := runSettings{locale: m.DefaultLocale()}
	for _, o := range opts {
		o(&settings)
	}
	b, err := m.check(ctx, name)
	if err != nil {
		return err
	}
	if !m.repeat(ctx, name, func(last func() bool) (retry bool) {
		retry, b, err = m.runOnce(ctx, b, fn, settings, last)
		return retry
	}) {
		return ctx.Err()
	}
	return err
}

func (m *Manager) runOnce(ctx context.Context, b *binding, fn func(context.Context) error, s runSettings, last func() bool) (retry bool, latest *binding, err error) {
	sess, scope, ctx := m.attach(ctx, b, s.locale)
	defer func() { latest = sess.b }()

	finished := false
	defer func() {
		if !finished {
			_ = sess.finish(ctx, false) // panic: roll back, release, the panic goes on
		}
	}()
	fnErr := fn(ctx)
	finished = true

	commit := fnErr == nil && !scope.IsRollbackOnly() && ctx.Err() == nil
	retry, err = sess.end(ctx, commit, last)
	_, _, beginErr := sess.state()
	switch {
	case retry:
		return true, b, nil
	case errors.Is(err, ErrConflict) && fnErr != nil: // retries spent: one answer, whoever saw the conflict
		return false, b, fmt.Errorf("%w: retries exhausted: %w", ErrConflict, fnErr)
	case fnErr != nil:
		return false, b, fnErr // unchanged
	case beginErr != nil: // fn swallowed it: nothing ran
		return false, b, beginErr
	case errors.Is(err, errRollbackFailed):
		m.log.WarnContext(ctx, "tenant: rollback failed", slog.String("tenant", b.name), slog.Any("error", err))
		return false, b, ctx.Err()
	case err == nil && !commit:
		return false, b, ctx.Err() // nil for RollbackOnly
	case err != nil:
		return false, b, err
	}
	if fns := scope.AfterCommitFuncs(); len(fns) > 0 && succeeded(sess, scope, true) {
		m.hooks.run(ctx, b.name, fns) // before Run returns: a job expects its side effects done
	}
	return false, b, nil
}
