package tenant

import (
	"context"
	"errors"

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
// panic goes on). fn's error is returned unchanged. Serialization failures run fn
// again, up to Config.Attempts; functions registered with tenantctx.AfterCommit run
// after the commit.
func (m *Manager) Run(ctx context.Context, name string, fn func(ctx context.Context) error, opts ...RunOption) error {
	settings := runSettings{locale: m.DefaultLocale()}
	for _, o := range opts {
		o(&settings)
	}
	if err := m.check(ctx, name); err != nil {
		return err
	}
	var err error
	if !m.repeat(ctx, name, m.attempts, func(last bool) (retry bool) {
		retry, err = m.runOnce(ctx, name, fn, settings, last)
		return retry
	}) {
		return ctx.Err()
	}
	return err
}

func (m *Manager) runOnce(ctx context.Context, name string, fn func(context.Context) error, s runSettings, last bool) (retry bool, err error) {
	sess, scope, ctx := m.attach(ctx, name, s.locale)

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
	switch {
	case retry:
		return true, nil
	case fnErr != nil:
		return false, fnErr // unchanged, even after the last conflict
	case errors.Is(err, errRollbackFailed), err == nil && !commit:
		return false, ctx.Err() // nil for RollbackOnly
	case err != nil:
		return false, err
	}
	m.afterCommit(ctx, name, sess, scope)
	return false, nil
}
