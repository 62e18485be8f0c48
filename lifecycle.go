package tenant

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/tenantkit/tenant/locale"
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
			name = foldASCII(name)
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
		// Whether another attempt may follow is known once this one ran: a handler
		// that read more of the body than MaxBodyBytes cannot be run again.
		a := m.newAttempt(r.Context(), b, tag, func() bool { return !body.replayable() || last() })
		retry := a.serveHTTP(w, r, next, body)
		b = a.binding()
		return retry
	})
}

// serveHTTP runs the handler once into a buffer, ends the transaction, and answers:
// the handler's response, or the lifecycle's error. It reports whether the attempt
// should run again, nothing having been sent.
func (a *attempt) serveHTTP(w http.ResponseWriter, r *http.Request, next http.Handler, body *replayBody) (retry bool) {
	m := a.m
	a.sess.checkApart = !safeMethod(r.Method)
	bw := newBufferedWriter(w, m.bufferBytes, func(status int) error {
		if a.sess.streamsOpen() && !a.sess.sawConflict() { // read-only: nothing to lose by streaming
			return nil
		}
		if retry, err := a.end(status < http.StatusBadRequest); retry {
			return errRunAgain
		} else {
			return err
		}
	})
	if m.negotiator != nil {
		locale.SetHeaders(bw.Header(), locale.FromContext(a.ctx)) // before the handler, so a stream carries them too
	}
	finished := false
	defer func() {
		if !finished { // the handler panicked: roll back, release, let the panic go on
			_, _ = a.end(false)
		}
	}()
	next.ServeHTTP(bw, attemptRequest(r, a.ctx, body))
	finished = true

	switch {
	case bw.Streaming() && bw.Failed() == nil: // the response went out; a read-only one is still open
		if _, err := a.end(bw.Status() < http.StatusBadRequest); err != nil {
			m.log.WarnContext(a.ctx, "tenant: ending a streamed read-only transaction", slog.String("tenant", a.name), slog.Any("error", err))
		}
		a.afterResponse(w, bw.Status())
		return false
	case !bw.Streaming() && r.Context().Err() != nil: // nobody is waiting for the answer
		_, _ = a.end(false)
		return false
	}
	retry, err := a.end(bw.Status() < http.StatusBadRequest)
	switch {
	case retry:
		return true
	case err != nil:
		m.fail(w, r, a.name, err)
		return false
	}
	if m.negotiator != nil {
		locale.AddVary(bw.Header(), "Accept-Language", "Cookie") // the handler may have replaced Vary
	}
	if err := bw.Release(); err != nil {
		m.log.DebugContext(a.ctx, "tenant: writing response", slog.String("tenant", a.name), slog.Any("error", err))
	}
	a.afterResponse(w, bw.Status())
	return false
}

// foldASCII lower-cases ASCII letters: the one case rule of tenant names in requests,
// whatever resolver found them (hosts are case-insensitive, and so, for the same
// tenant, are paths and headers). Tenant names are lower-case, so no two tenants fold
// to one; other characters are left for validation to refuse (strings.ToLower would
// turn the Kelvin sign into a "k").
func foldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// safeMethod reports the methods that should not write (RFC 9110, 9.2.1).
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// errRunAgain stops a response from streaming when its attempt is to run again (its
// transaction saw a conflict, or lost its connection).
var errRunAgain = errors.New("tenant: the attempt runs again")

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
