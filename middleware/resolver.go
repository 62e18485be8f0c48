package middleware

import (
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"
)

// Resolver finds the raw tenant name in a request. It returns "" when the request
// names no tenant, and the request to hand on (the same one unless the resolver
// rewrites it, as PathPrefix does). The name is validated afterwards, not here.
//
// The resolvers here run for every request and allocate nothing for the usual forms
// (PathPrefix only the request it hands on); escaped paths and upper-case hosts cost
// an allocation or two.
type Resolver func(r *http.Request) (tenant string, next *http.Request)

// Subdomain takes the tenant from the label left of one of the base domains:
// "acme.example.com" → "acme" for base "example.com". The bare base domain, "www",
// IP addresses and hosts with several labels left of the base ("a.b.example.com")
// name no tenant. Hosts are compared lower-case, without port or trailing dot. Base
// domains must be ASCII (write internationalized ones in punycode); the longest
// matching base wins. It panics on an empty or non-ASCII base, like regexp.MustCompile.
func Subdomain(bases ...string) Resolver {
	if len(bases) == 0 {
		panic("middleware.Subdomain: no base domain")
	}
	norm := make([]string, len(bases))
	for i, b := range bases {
		nb := normalizeHost(b)
		if nb == "" || !isASCII(nb) {
			panic("middleware.Subdomain: invalid base domain " + `"` + b + `" (use ASCII / punycode)`)
		}
		norm[i] = nb
	}
	sort.Slice(norm, func(i, j int) bool { return len(norm[i]) > len(norm[j]) })
	dotted := make([]string, len(norm)) // ".example.com", made once
	for i, b := range norm {
		dotted[i] = "." + b
	}
	return func(r *http.Request) (string, *http.Request) {
		host := normalizeHost(requestHost(r))
		for i, base := range norm {
			if host == base {
				return "", r
			}
			if label, ok := strings.CutSuffix(host, dotted[i]); ok {
				if label == "www" || label == "" || strings.Contains(label, ".") {
					return "", r
				}
				return label, r
			}
		}
		return "", r
	}
}

// Host takes the whole host, lower-case, without port or trailing dot, as the tenant
// name (hosts with dots then fail validation: combine with HostMap for real domains).
// IP addresses name no tenant.
func Host() Resolver {
	return func(r *http.Request) (string, *http.Request) {
		return normalizeHost(requestHost(r)), r
	}
}

// HostMap maps hosts (compared as Host does) to tenant names. It panics on a key that
// is no usable host (an IP address, not ASCII, empty), which would otherwise catch
// every request whose host is unusable.
func HostMap(m map[string]string) Resolver {
	norm := make(map[string]string, len(m))
	for h, t := range m {
		nh := normalizeHost(h)
		if nh == "" {
			panic("middleware.HostMap: invalid host " + `"` + h + `" (use ASCII / punycode names, not IP addresses)`)
		}
		norm[nh] = t
	}
	return func(r *http.Request) (string, *http.Request) {
		return norm[normalizeHost(requestHost(r))], r
	}
}

// PathPrefix takes the tenant from the path segment after prefix and strips both, so
// the router below sees the rest: "/t/acme/documents" → tenant "acme", path
// "/documents" ("/t/acme" → "/"). prefix "" means the first segment.
func PathPrefix(prefix string) Resolver {
	prefix = "/" + strings.Trim(prefix, "/")
	if prefix == "/" {
		prefix = ""
	}
	prefix += "/"
	return func(r *http.Request) (string, *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix)
		if !ok {
			return "", r
		}
		segment, tail := rest, "/"
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			segment, tail = rest[:i], rest[i:]
		}
		name, err := url.PathUnescape(segment)
		if err != nil || name == "" {
			return "", r
		}
		path, err := url.PathUnescape(tail)
		if err != nil {
			return "", r
		}
		next := new(rewritten) // the request and its URL in one allocation
		next.r, next.u = *r, *r.URL
		next.r.URL = &next.u
		next.u.Path = path
		next.u.RawPath = ""
		if path != tail {
			next.u.RawPath = tail
		}
		return name, &next.r
	}
}

// rewritten is a request PathPrefix hands on, with its own URL.
type rewritten struct {
	r http.Request
	u url.URL
}

// URLParam takes the tenant from a chi URL parameter, e.g. for routes mounted at
// "/t/{tenant}". chi sets the parameter only once it has matched the route, so the
// middleware must sit inside that route (r.Route("/t/{tenant}", ...) then r.Use), not
// in front of the router: there it finds no tenant and every request is a 404.
func URLParam(key string) Resolver {
	return func(r *http.Request) (string, *http.Request) { return chi.URLParam(r, key), r }
}

// PathValue takes the tenant from a net/http ServeMux wildcard (Go 1.22 patterns such
// as "/t/{tenant}/"). The mux sets the wildcard only on the request it hands the
// matched route's handler, so the middleware must wrap that handler:
//
//	mux.Handle("/t/{tenant}/", tenant.Middleware(mgr)(h))
//
// Wrapping the whole mux finds no tenant and answers every request 404 (the
// Middleware warns once in its log when that goes on). PathPrefix reads the same
// segment in front of any router, and strips it.
func PathValue(key string) Resolver {
	return func(r *http.Request) (string, *http.Request) { return r.PathValue(key), r }
}

// Header takes the tenant from a request header, e.g. Header("X-Tenant"). The value is
// used as sent (trimmed); tenant.Middleware then folds ASCII upper case, as for every
// resolver.
//
// A header sent more than once names no tenant: taking the first copy would let a
// client-sent value win over one appended by a proxy. A trusted proxy in front must
// therefore set (replace) the header, never append to it, and strip any copy the
// client sent. Proxies that merge copies into one value ("a, b") are caught later: the
// comma fails validation.
func Header(name string) Resolver {
	key := textproto.CanonicalMIMEHeaderKey(name) // as Header.Values has it, once
	return func(r *http.Request) (string, *http.Request) {
		values := r.Header[key]
		if len(values) != 1 {
			return "", r
		}
		return strings.TrimSpace(values[0]), r
	}
}

// First asks each resolver in turn and returns the first tenant found.
func First(resolvers ...Resolver) Resolver {
	return func(r *http.Request) (string, *http.Request) {
		for _, res := range resolvers {
			if t, next := res(r); t != "" {
				return t, next
			}
		}
		return "", r
	}
}

// normalizeHost lower-cases a host and removes its port, IPv6 brackets and trailing
// dot. IP addresses (v4, v6, with zone), non-numeric ports, hosts with stray colons
// and hosts that are not ASCII (internationalized names arrive in punycode; Unicode
// case folding would turn look-alikes such as the Kelvin sign into letters) become "".
func normalizeHost(h string) string {
	h = strings.TrimSpace(h)
	if host, ok := plainHost(h); ok {
		return host
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		if strings.Trim(port, "0123456789") != "" {
			return ""
		}
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if !isASCII(h) {
		return ""
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if _, err := netip.ParseAddr(h); err == nil || strings.ContainsAny(h, ":[]") {
		return ""
	}
	return h
}

func requestHost(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// plainHost is normalizeHost for the hosts requests carry, without allocating: a name
// of letters, digits, '-', '_' and '.', with a numeric port or none (h is trimmed).
// It reports false for anything else (an IPv6 address, a stray colon or bracket, a
// name that is not ASCII), which normalizeHost then takes apart in full.
func plainHost(h string) (string, bool) {
	host, port, hasPort := strings.Cut(h, ":")
	if hasPort {
		for i := 0; i < len(port); i++ {
			switch c := port[i]; {
			case c == ':' || c == '[' || c == ']' || c >= 0x80:
				return "", false
			case c < '0' || c > '9':
				return "", true // as net.SplitHostPort splits it: not a port
			}
		}
	}
	digitsAndDots, upper := true, false
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case c >= '0' && c <= '9', c == '.':
		case c >= 'a' && c <= 'z', c == '-', c == '_':
			digitsAndDots = false
		case c >= 'A' && c <= 'Z':
			digitsAndDots, upper = false, true
		default:
			return "", false
		}
	}
	host = strings.TrimSuffix(host, ".")
	if upper {
		host = strings.ToLower(host)
	}
	if digitsAndDots && strings.Contains(host, ".") {
		if _, err := netip.ParseAddr(host); err == nil {
			return "", true
		}
	}
	return host, true
}
