package tenant

import (
	"context"
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
	for attempt := 1; ; attempt++ {
		retry, err := m.runOnce(ctx, name, fn, settings, attempt == m.attempts)
		if !retry {
			return err
		}
		m.log.DebugContext(ctx, "tenant: transaction conflict, running again", slog.String("tenant", name), slog.Int("attempt", attempt))
		if !pause(ctx, attempt) {
			return ctx.Err()
		}
	}
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

	if fnErr != nil || scope.IsRollbackOnly() || ctx.Err() != nil || sess.sawConflict() {
		_ = sess.finish(ctx, false)
		switch {
		case sess.sawConflict() && !last:
			return true, nil
		case fnErr != nil:
			return false, fnErr
		case sess.sawConflict():
			return false, fmt.Errorf("%w: retries exhausted", ErrConflict)
		default:
			return false, ctx.Err() // nil for RollbackOnly
		}
	}
	if err := sess.finish(ctx, true); err != nil {
		switch {
		case isRetryable(err) && !last:
			return true, nil
		case isRetryable(err):
			return false, fmt.Errorf("%w: retries exhausted: %w", ErrConflict, err)
		default:
			return false, fmt.Errorf("%w: %w", ErrCommitFailed, err)
		}
	}
	m.afterCommit(ctx, name, sess, scope)
	return false, nil
}
