package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"

	"github.com/tenantkit/tenant/middleware"
)

func hostRequest(host string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = host
	return r
}

func TestSubdomain(t *testing.T) {
	res := middleware.Subdomain("example.com", "eu.example.com", "localhost")
	for host, want := range map[string]string{
		"acme.example.com":          "acme",
		"acme.example.com:8443":     "acme",
		"ACME.Example.COM":          "acme",
		"acme.example.com.":         "acme",
		"acme.example.com.:80":      "acme",
		"acme.eu.example.com":       "acme", // the longest base wins
		"eu.example.com":            "",     // a base itself
		"example.com":               "",
		"example.com:80":            "",
		"www.example.com":           "",
		"WWW.example.com":           "",
		"a.b.example.com":           "", // several levels
		"www.acme.example.com":      "",
		"xn--mller-kva.example.com": "xn--mller-kva", // punycode passes through; validation rejects "--"
		"acme.example.org":          "",
		"acmeexample.com":           "",
		"acme.localhost:8080":       "acme",
		"localhost:8080":            "",
		".example.com":              "",
		"":                          "",
		"127.0.0.1":                 "",
		"127.0.0.1:8080":            "",
		"[::1]:8080":                "",
		"[::1]":                     "",
		"::1":                       "",
		"[fe80::1%25en0]:80":        "",
		"acme.example.com:notaport": "", // not a host:port we understand
		"evil.com/acme.example.com": "",
		"\u212Acme.example.com":     "", // the Kelvin sign is not a "k"
		"müller.example.com":        "", // not punycode
	} {
		t.Run(host, func(t *testing.T) {
			got, next := res(hostRequest(host))
			assert.Equal(t, want, got)
			assert.NotNil(t, next)
		})
	}
}

func TestSubdomainRejectsBadBases(t *testing.T) {
	assert.Panics(t, func() { middleware.Subdomain() })
	assert.Panics(t, func() { middleware.Subdomain("") })
	assert.Panics(t, func() { middleware.Subdomain("müller.de") })
	assert.NotPanics(t, func() { middleware.Subdomain("xn--mller-kva.de", "Example.COM.") })
}

// A HostMap key that is no usable host would catch every request with an unusable
// host (an IP address, a bad port): refused when the resolver is made.
func TestHostMapRejectsBadHosts(t *testing.T) {
	for _, h := range []string{"bücher.example", "10.0.0.5", "[::1]", ""} {
		assert.Panics(t, func() { middleware.HostMap(map[string]string{h: "books"}) }, h)
	}
	assert.NotPanics(t, func() { middleware.HostMap(map[string]string{"Books.Example:443": "books"}) })
}

func TestHostAndHostMap(t *testing.T) {
	host := middleware.Host()
	hm := middleware.HostMap(map[string]string{"Shop.Acme.com": "acme", "globex.test": "globex"})
	for _, tc := range []struct{ host, host1, mapped string }{
		{"intranet", "intranet", ""},
		{"Intranet:8080", "intranet", ""},
		{"shop.acme.com", "shop.acme.com", "acme"},
		{"SHOP.ACME.COM.:443", "shop.acme.com", "acme"},
		{"globex.test", "globex.test", "globex"},
		{"10.0.0.1", "", ""},
		{"[2001:db8::1]:443", "", ""},
		{"", "", ""},
	} {
		got, _ := host(hostRequest(tc.host))
		assert.Equal(t, tc.host1, got, "Host(%q)", tc.host)
		got, _ = hm(hostRequest(tc.host))
		assert.Equal(t, tc.mapped, got, "HostMap(%q)", tc.host)
	}
}

func TestPathPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix, target    string
		tenant, path, raw string
	}{
		{"/t", "/t/acme/documents", "acme", "/documents", ""},
		{"/t/", "/t/acme/documents/7?x=1", "acme", "/documents/7", ""},
		{"t", "/t/acme", "acme", "/", ""},
		{"/t", "/t/acme/", "acme", "/", ""},
		{"/t", "/t/", "", "/t/", ""},
		{"/t", "/t", "", "/t", ""},
		{"/t", "/tx/acme/documents", "", "/tx/acme/documents", ""},
		{"/t", "/documents", "", "/documents", ""},
		{"/t", "/t/ac%20me/documents", "ac me", "/documents", ""},
		{"/t", "/t/acme/a%2Fb", "acme", "/a/b", "/a%2Fb"},
		{"", "/acme/documents", "acme", "/documents", ""},
		{"/api/v1", "/api/v1/acme/x", "acme", "/x", ""},
	} {
		t.Run(tc.prefix+" "+tc.target, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, nil)
			tenant, next := middleware.PathPrefix(tc.prefix)(r)
			assert.Equal(t, tc.tenant, tenant)
			assert.Equal(t, tc.path, next.URL.Path)
			assert.Equal(t, tc.raw, next.URL.RawPath)
			if tc.tenant != "" {
				assert.Equal(t, tc.target, r.URL.RequestURI(), "the original request is untouched")
			}
		})
	}
}

func TestParamHeaderFirst(t *testing.T) {
	router := chi.NewRouter()
	var got string
	router.Get("/t/{tenant}/x", func(w http.ResponseWriter, r *http.Request) { got, _ = middleware.URLParam("tenant")(r) })
	router.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/t/acme/x", nil))
	assert.Equal(t, "acme", got)

	mux := http.NewServeMux()
	mux.HandleFunc("/t/{tenant}/x", func(w http.ResponseWriter, r *http.Request) { got, _ = middleware.PathValue("tenant")(r) })
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/t/globex/x", nil))
	assert.Equal(t, "globex", got)

	r := httptest.NewRequest("GET", "/t/pathco/x", nil)
	r.Host = "subco.example.com"
	r.Header.Set("X-Tenant", "  headco ")
	first := middleware.First(middleware.Header("X-Tenant"), middleware.Subdomain("example.com"))
	got, _ = first(r)
	assert.Equal(t, "headco", got)
	r.Header.Del("X-Tenant")
	got, _ = first(r)
	assert.Equal(t, "subco", got)

	viaPath := middleware.First(middleware.Header("X-Tenant"), middleware.PathPrefix("/t"))
	got, next := viaPath(r)
	assert.Equal(t, "pathco", got)
	assert.Equal(t, "/x", next.URL.Path, "the rewrite of the resolver that matched is kept")

	got, next = middleware.First()(r)
	assert.Equal(t, "", got)
	assert.Same(t, r, next)
}

func TestHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string // each one a separate header line
		want   string
	}{
		{"one value", []string{"  acme "}, "acme"},
		{"repeated identical", []string{"acme", "acme"}, ""},
		{"repeated different", []string{"client", "proxy"}, ""},
		{"comma-joined", []string{" client, proxy "}, "client, proxy"}, // validation refuses it later
		{"missing", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, v := range tc.values {
				r.Header.Add("X-Tenant", v)
			}
			got, next := middleware.Header("x-tenant")(r)
			assert.Equal(t, tc.want, got)
			assert.Same(t, r, next)
		})
	}
}
