package middleware

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
)

// referenceHost is normalizeHost as it reads in full, without plainHost's shortcut:
// the two must agree on every host.
func referenceHost(h string) string {
	h = strings.TrimSpace(h)
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

var hosts = []string{
	"", "acme", "acme.example.com", "ACME.Example.COM", "acme.example.com.", "acme.example.com:8443",
	"acme.example.com.:80", "acme:", ":80", ":", "a:b:c", "acme:8a", "acme:80:80", "[::1]", "[::1]:80",
	"::1", "[fe80::1%25en0]:80", "127.0.0.1", "127.0.0.1:8080", "127.0.0.1.", "1.2.3", "1.2.3.4.5",
	"01.2.3.4", "1.2.3.256", "1234", "1.2.3.4%eth0", "a_b.example.com", "-a-.x", "müller.example.com",
	"\u212Acme.example.com", " acme.example.com ", "acme .example.com", "[acme]", "[acme]:80", "acme]",
	"a[b", "acme:é", "acme:8é", "x:]", "x:[", "[1:2]", "[a]:x", "evil.com/acme.example.com", "acme\t:80",
	"..", ".", "a..b", "a:0", "a:00000000000000000000",
}

func TestPlainHostAgreesWithReference(t *testing.T) {
	for _, h := range hosts {
		assert.Equal(t, referenceHost(h), normalizeHost(h), "%q", h)
	}
}

func FuzzNormalizeHost(f *testing.F) {
	for _, h := range hosts {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if got, want := normalizeHost(h), referenceHost(h); got != want {
			t.Fatalf("normalizeHost(%q) = %q, want %q", h, got, want)
		}
	})
}

// The resolvers allocate nothing for the requests they see every time (PathPrefix
// only the request it hands on).
func TestResolversAllocate(t *testing.T) {
	req := func(host, target string, header ...string) *http.Request {
		r := httptest.NewRequest("GET", target, nil)
		r.Host = host
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	withParam := req("example.com", "/t/acme/documents")
	rctx := chi.NewRouteContext()
	rctx.URLParams.Add("tenant", "acme")
	withParam = withParam.WithContext(context.WithValue(withParam.Context(), chi.RouteCtxKey, rctx))
	muxReq := req("example.com", "/t/acme/documents")
	muxReq.SetPathValue("tenant", "acme")
	for _, tc := range []struct {
		name   string
		res    Resolver
		r      *http.Request
		want   string
		allocs float64
	}{
		{"subdomain", Subdomain("example.com", "example.org"), req("acme.example.com", "/"), "acme", 0},
		{"subdomain with port", Subdomain("example.com"), req("acme.example.com:8080", "/"), "acme", 0},
		{"host", Host(), req("acme:8080", "/"), "acme", 0},
		{"host map", HostMap(map[string]string{"shop.acme.com": "acme"}), req("shop.acme.com", "/"), "acme", 0},
		{"header", Header("x-tenant"), req("example.com", "/", "X-Tenant", "acme"), "acme", 0},
		{"url param", URLParam("tenant"), withParam, "acme", 0},
		{"path value", PathValue("tenant"), muxReq, "acme", 0},
		{"first", First(Header("X-Tenant"), Subdomain("example.com")), req("acme.example.com", "/"), "acme", 0},
		{"path prefix", PathPrefix("/t"), req("example.com", "/t/acme/documents"), "acme", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := tc.res(tc.r)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.allocs, testing.AllocsPerRun(100, func() { _, _ = tc.res(tc.r) }))
		})
	}
}
