package locale_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant/locale"
)

var deCH = language.MustParse("de-CH")

func TestNegotiate(t *testing.T) {
	n := locale.NewNegotiator(language.English, language.German, deCH, language.French)
	for _, tc := range []struct {
		name, query, cookie, accept string
		want                        language.Tag
	}{
		{"nothing: default", "", "", "", language.English},
		{"accept", "", "", "de", language.German},
		{"accept region", "", "", "de-CH", deCH},
		{"accept q order", "", "", "fr;q=0.5, de;q=0.9", language.German},
		{"accept unsupported then supported", "", "", "ja, fr;q=0.8", language.French},
		{"accept malformed entry kept the good ones", "", "", "x-;;q=abc, !!, de;q=0.7", language.German},
		{"accept bad q ignored", "", "", "fr;q=2, de;q=0.1", language.German},
		{"accept q=0 excluded", "", "", "de;q=0, fr;q=0.1", language.French},
		{"accept wildcard", "", "", "*", language.English},
		{"accept only unsupported", "", "", "ja, ko", language.English},
		{"accept en-GB is en, no -u-rg-", "", "", "en-GB", language.English},
		{"cookie beats accept", "", "fr", "de", language.French},
		{"query beats cookie", "de-CH", "fr", "de", deCH},
		{"unsupported query falls through", "ja", "fr", "", language.French},
		{"garbage query falls through", "'; DROP", "", "de", language.German},
		{"garbage cookie falls through", "", "%%%", "de", language.German},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.query != "" {
				q := r.URL.Query()
				q.Set("locale", tc.query)
				r.URL.RawQuery = q.Encode()
			}
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: "locale", Value: tc.cookie})
			}
			if tc.accept != "" {
				r.Header.Set("Accept-Language", tc.accept)
			}
			got := n.Negotiate(r)
			assert.Equal(t, tc.want, got, "got %s", got)
			assert.True(t, got == tc.want, "exactly the supported tag, no extensions: %s", got)
		})
	}
}

func TestNegotiatorBasics(t *testing.T) {
	assert.Panics(t, func() { locale.NewNegotiator() })
	n := locale.NewNegotiator(language.German, language.English)
	assert.Equal(t, language.German, n.Default())
	assert.Equal(t, []language.Tag{language.German, language.English}, n.Supported())
	tag, ok := n.Match("EN-us")
	assert.True(t, ok)
	assert.Equal(t, language.English, tag)
	_, ok = n.Match("")
	assert.False(t, ok)
}

func TestParseAcceptLanguage(t *testing.T) {
	assert.Equal(t, []language.Tag{language.German, language.French, language.English},
		locale.ParseAcceptLanguage("fr;q=0.8, de, en;q=0.1, bogus-!!;q=1, it;q=0, *;q=0.5, es;foo=bar"))
	assert.Empty(t, locale.ParseAcceptLanguage(""))
}

func TestSetHeadersMergesVary(t *testing.T) {
	h := http.Header{}
	h.Add("Vary", "Origin")
	h.Add("Vary", "accept-language")
	locale.SetHeaders(h, deCH)
	assert.Equal(t, "de-CH", h.Get("Content-Language"))
	assert.Equal(t, []string{"Origin", "accept-language", "Cookie"}, h.Values("Vary"))
	locale.AddVary(h, "Cookie")
	assert.Len(t, h.Values("Vary"), 3)

	star := http.Header{"Vary": {"*"}}
	locale.AddVary(star, "Cookie")
	assert.Equal(t, []string{"*"}, star.Values("Vary"))
}
