package tenant

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// Middleware runs each request's tenant lifecycle: resolve, validate, admit, attach a
// lazy session and the locale, run the handler into a buffer, then commit (status <
// 400, not RollbackOnly) or roll back, and only then send the response. A
// serialization failure runs the handler again with its body replayed. It panics if
// the Manager has no Resolver. A request that names no tenant is answered 404 and
// logged at Debug; when the first 100 requests a wrapped handler sees all name none,
// it logs one warning: the resolver likely sits where it cannot see the tenant
// (PathValue around a whole ServeMux, URLParam in front of chi's router).
func Middleware(m *Manager) func(http.Handler) http.Handler {
	if m.resolver == nil {
		panic("tenant.Middleware: Config.Resolver is nil")
	}
	return func(next http.Handler) http.Handler {
		watch := new(resolverWatch) // per wrapped handler: one misplaced route is enough to warn
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, r := m.resolver(r)
			name = foldASCII(name)
			if name == "" {
				if watch.missed() {
					m.warnNoTenant(r)
				}
				m.fail(w, r, "", fmt.Errorf("%w: no tenant in request", ErrUnknownTenant))
				return
			}
			watch.found()
			b, start, err := m.check(r.Context(), name, time.Now())
			if err != nil {
				m.fail(w, r, name, err)
				return
			}
			m.serve(w, r, b, next, start)
		})
	}
}

// serve runs the handler in attempts until one is answered; the first starts at
// start.
func (m *Manager) serve(w http.ResponseWriter, r *http.Request, b *binding, next http.Handler, start time.Time) {
	loc := &m.locales[0] // language.Und, without Config.Locales
	if m.negotiator != nil {
		loc = m.localeEntry(m.negotiator.Negotiate(r))
	}
	q := new(request)
	q.body.init(r, m.maxBody)
	q.retries.start(r.Context(), m, &q.body, start)
	a := &q.first
	for first := true; ; first = false {
		a.init(m, r.Context(), b, loc.ctx, &q.retries)
		if m.negotiator != nil {
			a.locale = loc
		}
		retry := a.serveHTTP(w, r, next, &q.body, first)
		b = a.binding()
		if !retry || !q.retries.pause(r.Context(), b.name) {
			return
		}
		a = new(httpAttempt)
	}
}

// request is what the attempts of one request share, made with the first of them in
// one allocation: the body kept for replay and the retry budget.
type request struct {
	body    replayBody
	retries retries
	first   httpAttempt
}

// httpAttempt is an attempt of Middleware, with what it hands the handler in the same
// allocation: its own copy of the request, of its URL (a handler may rewrite it) and
// of chi's routing state (chi routes by rewriting it in place), so that a retry
// routes what the first attempt routed; its view of the body; and the storage of the
// header values the lifecycle sets.
type httpAttempt struct {
	attempt
	locale *localeEntry // the negotiated locale; nil without Config.Locales

	req   http.Request
	url   url.URL
	route chi.Context
	// routeKeys, routeValues and routePatterns back route's slices, to which chi
	// appends as it routes: the router's own slices stay as they were.
	routeKeys, routeValues, routePatterns [4]string
	body                                  attemptBody

	// w is the writer the handler gets.
	w bufferedWriter
	// Storage for the values of the headers the lifecycle sets: the attempt's, which
	// nothing reuses, so the header maps that keep them never share a pool's memory.
	contentLength, contentLanguage [1]string
	vary                           [2]string
}

// request returns the request the attempt hands the handler: the attempt's context,
// the body from the start, its own URL and routing state.
//
// chi's routing state is copied into the attempt's own storage, the exported slices
// (URL parameters, patterns) included, while chi's unexported scratch (the parameters
// of the route being matched, the methods a 405 would allow) stays shared with the
// router's: routing below the middleware rewrites the scratch before reading it
// again, and the methods are only appended to. What reads the scratch as it is is a
// mount's handler, for the part of the path its wildcard matched: when the last match
// ended in a wildcard no mount has consumed yet (a Mount behind the middleware), and
// on a later attempt, which must route as the first did, the attempt takes chi's full
// Clone instead.
func (a *httpAttempt) request(r *http.Request, body *replayBody, first bool) *http.Request {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		if first && !wildcardPending(rctx) {
			a.route = *rctx
			a.route.URLParams.Keys = append(a.routeKeys[:0], rctx.URLParams.Keys...)
			a.route.URLParams.Values = append(a.routeValues[:0], rctx.URLParams.Values...)
			a.route.RoutePatterns = append(a.routePatterns[:0], rctx.RoutePatterns...)
			a.node.route = &a.route
		} else {
			a.node.route = rctx.Clone()
		}
	}
	a.req = *r.WithContext(a.context()) // inlined: the copy is made here, not on the heap
	a.url = *r.URL
	a.req.URL = &a.url
	a.req.Body = body.reader(&a.body)
	return &a.req
}

// wildcardPending reports whether chi's last match ended in a wildcard with a value
// that no mount has consumed yet (a mount's handler empties it as it passes the rest
// of the path on).
func wildcardPending(rctx *chi.Context) bool {
	n := len(rctx.URLParams.Keys) - 1
	return n >= 0 && rctx.URLParams.Keys[n] == "*" && n < len(rctx.URLParams.Values) && rctx.URLParams.Values[n] != ""
}

// serveHTTP runs the handler once into a buffer, ends the transaction, and answers:
// the handler's response, or the lifecycle's error. It reports whether the attempt
// should run again, nothing having been sent.
func (a *httpAttempt) serveHTTP(w http.ResponseWriter, r *http.Request, next http.Handler, body *replayBody, first bool) (retry bool) {
	m := a.m
	a.sess.checkApart = !safeMethod(r.Method)
	bw := &a.w
	bw.init(w, m.bufferBytes, a, &a.contentLength)
	if a.locale != nil {
		a.setLocaleHeaders(bw.buffered()) // before the handler, so a stream carries them too
	}
	finished := false
	defer func() {
		switch {
		case !finished: // the handler panicked: roll back, release, let the panic go on
			_, _ = a.end(false) // (and recycle nothing: who knows what the panic left)
		case !a.hooksStarted: // after-commit functions may still use the writer
			bw.recycle()
		}
	}()
	next.ServeHTTP(bw, a.request(r, body, first))
	finished = true

	switch {
	case bw.Streaming() && bw.Failed() == nil: // the response went out; a read-only one is still open
		if _, err := a.end(bw.Status() < http.StatusBadRequest); err != nil {
			m.log.WarnContext(a.context(), "tenant: ending a streamed read-only transaction", slog.String("tenant", a.name), slog.Any("error", err))
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
	if a.locale != nil {
		a.addVary(bw.buffered()) // the handler may have replaced Vary
	}
	if err := bw.Release(); err != nil && m.log.Enabled(a.context(), slog.LevelDebug) { // the client left
		m.log.DebugContext(a.context(), "tenant: writing response", slog.String("tenant", a.name), slog.Any("error", err))
	}
	a.afterResponse(w, bw.Status())
	return false
}

// endBeforeStream ends the transaction of a response about to stream (the writer's
// streamEnder): a read-only one that saw no conflict stays open, as it has nothing to
// lose; one that is to run again stops the stream.
func (a *httpAttempt) endBeforeStream(status int) error {
	if a.sess.streamsOpen() && !a.sess.sawConflict() {
		return nil
	}
	if retry, err := a.end(status < http.StatusBadRequest); retry {
		return errRunAgain
	} else {
		return err
	}
}

// setLocaleHeaders is locale.SetHeaders for the attempt's locale, with the attempt's
// storage for the values.
func (a *httpAttempt) setLocaleHeaders(h http.Header) {
	a.contentLanguage[0] = a.locale.name
	h["Content-Language"] = a.contentLanguage[:]
	a.addVary(h)
}

// addVary is locale.AddVary(h, "Accept-Language", "Cookie"), without allocating when
// Vary is empty or has both.
func (a *httpAttempt) addVary(h http.Header) {
	if v := h["Vary"]; len(v) == 2 && v[0] == "Accept-Language" && v[1] == "Cookie" {
		return // as setLocaleHeaders left it, most often
	}
	needLanguage, needCookie := true, true
	for _, v := range h["Vary"] {
		for more := true; more; {
			var f string
			f, v, more = strings.Cut(v, ",")
			switch varyField(f) {
			case "*":
				return
			case "accept-language":
				needLanguage = false
			case "cookie":
				needCookie = false
			}
		}
	}
	vary := h["Vary"]
	switch {
	case len(vary) == 0 && needLanguage && needCookie:
		a.vary = [2]string{"Accept-Language", "Cookie"}
		vary = a.vary[:]
	case needLanguage:
		vary = append(vary, "Accept-Language")
		if needCookie {
			vary = append(vary, "Cookie")
		}
	case needCookie:
		vary = append(vary, "Cookie")
	default:
		return
	}
	h["Vary"] = vary
}

// varyField returns a field of a Vary value as locale.AddVary compares it,
// strings.ToLower(strings.TrimSpace(f)), without allocating for ASCII fields (for
// which it returns "" when the field is none of "*", "accept-language" and "cookie").
func varyField(f string) string {
	for i := 0; i < len(f); i++ {
		if f[i] >= 0x80 {
			return strings.ToLower(strings.TrimSpace(f))
		}
	}
	for len(f) > 0 && f[0] <= ' ' && asciiSpace[f[0]] {
		f = f[1:]
	}
	for len(f) > 0 && f[len(f)-1] <= ' ' && asciiSpace[f[len(f)-1]] {
		f = f[:len(f)-1]
	}
	for _, known := range [...]string{"*", "accept-language", "cookie"} {
		if len(f) == len(known) && strings.EqualFold(f, known) {
			return known
		}
	}
	return ""
}

// asciiSpace is what strings.TrimSpace trims among ASCII characters.
var asciiSpace = [33]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

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
	if m.log.Enabled(r.Context(), level) { // the attributes cost allocations, even for a level not logged
		m.log.Log(r.Context(), level, "tenant: request failed", slog.String("tenant", name),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	m.onError(w, r, err)
}
