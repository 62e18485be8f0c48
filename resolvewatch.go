package tenant

import (
	"log/slog"
	"net/http"
	"sync/atomic"
)

// warnAfterMisses is how many requests in a row a Middleware answers 404 for want of a
// tenant, from its start, before it logs one warning that its resolver may sit in the
// wrong place. Such a 404 is logged at Debug only (every probe of a random subdomain
// makes one), so a resolver that can never find a tenant would otherwise fail silently:
// the classic case is a whole ServeMux wrapped with PathValue, whose wildcard is set only
// inside the matched route. One request that names a tenant ends the watch for good.
const warnAfterMisses = 100

// resolverWatch counts a Middleware's first requests without a tenant. It runs on every
// request, so it is one atomic word and allocates nothing: once settled (a tenant found,
// or the warning given) each request costs one atomic load of a word that no longer
// changes.
type resolverWatch struct {
	misses atomic.Int32 // requests without a tenant so far; settled once negative
}

// found settles the watch: the resolver works.
func (w *resolverWatch) found() {
	if w.misses.Load() >= 0 {
		w.misses.Store(-1)
	}
}

// missed counts a request without a tenant and reports whether it is the one that
// should warn (the warnAfterMisses-th, when no tenant was found before).
func (w *resolverWatch) missed() bool {
	for {
		n := w.misses.Load()
		if n < 0 {
			return false
		}
		next := n + 1
		if next == warnAfterMisses {
			next = -1
		}
		if w.misses.CompareAndSwap(n, next) {
			return next < 0
		}
	}
}

// warnNoTenant logs, once per Middleware, that its resolver found no tenant in any of
// its first requests, with the last one's host and path to show what it was given.
func (m *Manager) warnNoTenant(r *http.Request) {
	m.log.WarnContext(r.Context(), "tenant: the resolver found no tenant in any request so far, and each was answered 404 unknown tenant;"+
		" a resolver that reads a router's wildcard (PathValue, URLParam) finds it only in a middleware inside the route that declares it,"+
		" not around the whole router (see the resolver table in docs/lifecycle.md)",
		slog.Int("requests", warnAfterMisses), slog.String("host", r.Host), slog.String("path", r.URL.Path))
}
