package tenant

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"golang.org/x/text/language"

	"github.com/tenantkit/tenant/locale"
	"github.com/tenantkit/tenant/middleware"
)

// Middleware runs each request's tenant lifecycle: resolve, validate, admit, attach a
// lazy session and the locale, run the handler into a buffer, then commit (status <
// 400, not RollbackOnly) or roll back, and only then send the response. A
// serialization failure runs the handler again with its body replayed. It panics if
// the Manager has no Resolver.
func Middleware(m *Manager) func(http.Handler) http.Handler {
	if m.resolver == nil {
		panic("tenant.Middleware: Config.Resolver is nil")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, r := m.resolver(r)
			if name == "" {
				m.fail(w, r, "", fmt.Errorf("%w: no tenant in request", ErrUnknownTenant))
				return
			}
			b, err := m.check(r.Context(), name)
			if err != nil {
				m.fail(w, r, name, err)
				return
			}
			m.serve(w, r, b, next)
		})
	}
}

// serve runs the handler in attempts until one is answered.
func (m *Manager) serve(w http.ResponseWriter, r *http.Request, b *binding, next http.Handler) {
	tag := m.DefaultLocale()
	if m.negotiator != nil {
		tag = m.negotiator.Negotiate(r)
	}
	body := newReplayBody(r, m.maxBody)
	m.repeat(r.Context(), b.name, func(last func() bool) bool {
		var retry bool
		retry, b = m.serveOnce(w, r, b, tag, next, body, last)
		return retry
	})
}

// serveOnce runs one attempt and reports whether it should run again, and the binding
// the next attempt starts from (refreshed when a migration moved the tenant's version).
func (m *Manager) serveOnce(w http.ResponseWriter, r *http.Request, b *binding, tag language.Tag, next http.Handler, body *replayBody, last func() bool) (retry bool, latest *binding) {
	name := b.name
	sess, scope, ctx := m.attach(r.Context(), b, tag)
	sess.checkApart = !safeMethod(r.Method)
	defer func() { latest = sess.b }()
	// Whether another attempt may follow is known once this one ran: a handler that
	// read more of the body than MaxBodyBytes cannot be run again.
	isLast := func() bool { return !body.replayable() || last() }
	bw := middleware.NewBufferedWriter(w, m.bufferBytes, func(status int) error {
		if sess.sawConflict() {
			_ = sess.finish(ctx, false)
			return errConflictSeen // nothing has been sent: the request can still run again
		}
		if sess.streamsOpen() { // read-only: it streams with its transaction open
			return nil
		}
		return sess.finish(ctx, status < http.StatusBadRequest && !scope.IsRollbackOnly())
	})
	if m.negotiator != nil {
		locale.SetHeaders(bw.Header(), tag) // before the handler, so a stream carries them too
	}
	r2 := attemptRequest(r, ctx, body)

	finished := false
	defer func() {
		if !finished { // the handler panicked: roll back, release, let the panic go on
			if err := sess.finish(ctx, false); err != nil {
				m.log.ErrorContext(ctx, "tenant: rollback after panic", slog.String("tenant", name), slog.Any("error", err))
			}
		}
	}()
	next.ServeHTTP(bw, r2)
	finished = true

	if bw.Streaming() {
		// Ended by beforeStream (a no-op here that guarantees it), or read-only and open.
		if err := sess.finish(ctx, bw.Status() < http.StatusBadRequest && !scope.IsRollbackOnly()); err != nil && sess.streamsOpen() {
			m.log.WarnContext(ctx, "tenant: ending a streamed read-only transaction", slog.String("tenant", name), slog.Any("error", err))
		}
		if err := bw.Failed(); err != nil { // nothing reached the client
			rerun := errors.Is(err, errRerun) || sess.lostConnection()
			conflict := rerun || isRetryable(err) || errors.Is(err, errConflictSeen)
			switch {
			case conflict && !isLast():
				return true, b
			case rerun:
				m.fail(w, r, name, fmt.Errorf("%w: the connection died, retries exhausted, before streaming: %w", ErrUnavailable, err))
			case conflict:
				m.fail(w, r, name, fmt.Errorf("%w: retries exhausted, before streaming: %w", ErrConflict, err))
			default:
				m.fail(w, r, name, fmt.Errorf("before streaming: %w", commitFailed(err)))
			}
			return false, b
		}
		m.afterResponse(w, ctx, name, sess, scope, bw.Status())
		return false, b
	}
	if err := r.Context().Err(); err != nil {
		if rbErr := sess.finish(ctx, false); rbErr != nil {
			m.log.WarnContext(ctx, "tenant: rollback of cancelled request", slog.String("tenant", name), slog.Any("error", rbErr))
		}
		return false, b
	}
	if _, _, err := sess.state(); err != nil { // it could not begin: its answer, not the handler's
		_ = sess.finish(ctx, false)
		m.fail(w, r, name, err)
		return false, b
	}
	retry, err := sess.end(ctx, bw.Status() < http.StatusBadRequest && !scope.IsRollbackOnly(), isLast)
	switch {
	case retry:
		return true, b
	case errors.Is(err, errRollbackFailed):
		m.log.WarnContext(ctx, "tenant: rollback failed", slog.String("tenant", name), slog.Any("error", err))
	case err != nil:
		m.fail(w, r, name, err)
		return false, b
	}
	if m.negotiator != nil {
		locale.AddVary(bw.Header(), "Accept-Language", "Cookie") // the handler may have replaced Vary
	}
	if err := bw.Release(); err != nil {
		m.log.DebugContext(ctx, "tenant: writing response", slog.String("tenant", name), slog.Any("error", err))
	}
	m.afterResponse(w, ctx, name, sess, scope, bw.Status())
	return false, b
}

// safeMethod reports the methods that should not write (RFC 9110, 9.2.1).
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// errConflictSeen stops a response from streaming after its transaction saw a
// serialization failure, deadlock or stale plan.
var errConflictSeen = errors.New("tenant: the transaction saw a conflict")

// fail logs the detail and hands the error to the ErrorHandler.
func (m *Manager) fail(w http.ResponseWriter, r *http.Request, name string, err error) {
	level := slog.LevelWarn
	switch {
	case errors.Is(err, ErrUnknownTenant):
		level = slog.LevelDebug // every probe of a random subdomain lands here
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrCommitFailed):
		level = slog.LevelError
	}
	m.log.Log(r.Context(), level, "tenant: request failed", slog.String("tenant", name),
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	m.onError(w, r, err)
}
