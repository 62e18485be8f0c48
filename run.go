package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/text/language"
)

// RunOption changes one Manager.Run.
type RunOption func(*runSettings)

type runSettings struct {
	locale language.Tag
}

// WithLocale sets the locale locale.FromContext returns inside Run (default: the first
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
	b, start, err := m.check(ctx, name, time.Now())
	if err != nil {
		return err
	}
	loc := m.localeContext(settings.locale)
	rs := new(retries)
	rs.start(ctx, m, nil, start)
	for {
		a := new(attempt)
		a.init(m, ctx, b, loc, rs)
		retry, err := a.run(fn)
		b = a.binding()
		if !retry {
			return err
		}
		if !rs.pause(ctx, name) {
			return ctx.Err()
		}
	}
}

// run runs fn once and ends the transaction: Run's contract on top of attempt.end.
func (a *attempt) run(fn func(context.Context) error) (retry bool, err error) {
	finished := false
	defer func() {
		if !finished { // panic: roll back, release, the panic goes on
			_, _ = a.end(false)
		}
	}()
	ctx := a.context()
	fnErr := fn(ctx)
	finished = true

	cancelled := ctx.Err() != nil
	retry, err = a.end(fnErr == nil && !cancelled)
	switch {
	case retry:
		return true, nil
	case errors.Is(err, ErrConflict) && fnErr != nil: // retries spent: one answer, whoever saw the conflict
		return false, fmt.Errorf("%w: retries exhausted: %w", ErrConflict, fnErr)
	case fnErr != nil:
		return false, fnErr // unchanged
	case err != nil:
		return false, err
	case cancelled:
		return false, ctx.Err()
	}
	if fns := a.scope.AfterCommit(); len(fns) > 0 && a.succeeded(true) {
		a.m.hooks.run(ctx, a.name, fns) // before Run returns: a job expects its side effects done
	}
	return false, nil
}
