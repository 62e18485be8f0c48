package locale

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"
)

var queries = []string{
	"", "locale=de", "a=1&locale=de", "locale=de&locale=fr", "locale=", "locale", "&&locale=fr&",
	"loc%61le=de", "locale=d%65", "lo+cale=de", "locale=de+CH", "locale=de%", "locale=%zz&locale=fr",
	"locale%=de&locale=fr", "x=1;locale=de", "locale=de;x=1&locale=fr", "LOCALE=de", "locale=%20de%20",
	"a%=b&locale=en", "locale=de=CH", "=de&locale=fr", "%6C%6f%63%61%6C%65=fr", "locale%2=x&locale=y",
	strings.Repeat("a&", 10000) + "locale=de", strings.Repeat("a&", 9998) + "locale=de",
}

func TestQueryValueIsQueryGet(t *testing.T) {
	for _, q := range queries {
		u := &url.URL{Path: "/", RawQuery: q}
		assert.Equal(t, u.Query().Get(QueryParam), queryValue(u, QueryParam), "%.60q", q)
	}
}

func FuzzQueryValue(f *testing.F) {
	for _, q := range queries {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		u := &url.URL{Path: "/", RawQuery: q}
		if got, want := queryValue(u, QueryParam), u.Query().Get(QueryParam); got != want {
			t.Fatalf("queryValue(%q) = %q, Query().Get = %q", q, got, want)
		}
	})
}

var cookieHeaders = [][]string{
	nil, {""}, {"locale=de"}, {"a=1; locale=de"}, {"locale=de; locale=fr"}, {"  locale = de ; x=1"},
	{`locale="de"`}, {`locale="de`}, {`locale=""`}, {`locale="`}, {"locale=d e"}, {"locale=de\\"},
	{"locale=de,fr"}, {"locale"}, {"locale=;locale=fr"}, {"LOCALE=de"}, {"a=1", "locale=fr"},
	{"locale=\x01; locale=fr"}, {"x=1;;; locale=de"}, {"\tlocale=de\t"}, {"locale=dé; locale=fr"},
	{strings.Repeat("a=1; ", 2999) + "locale=de"}, {strings.Repeat("a=1; ", 3000) + "locale=de"},
	{strings.Repeat("a=1; ", 1500), strings.Repeat("a=1; ", 1500) + "locale=de"},
}

func TestCookieValueIsCookie(t *testing.T) {
	for _, lines := range cookieHeaders {
		r := httptest.NewRequest("GET", "/", nil)
		for _, l := range lines {
			r.Header.Add("Cookie", l)
		}
		got, ok := cookieValue(r, CookieName)
		c, err := r.Cookie(CookieName)
		if assert.Equal(t, err == nil, ok, "%.60q", lines) && ok {
			assert.Equal(t, c.Value, got, "%.60q", lines)
		}
	}
}

func FuzzCookieValue(f *testing.F) {
	for _, lines := range cookieHeaders {
		if len(lines) == 1 && len(lines[0]) < 100 {
			f.Add(lines[0], "")
		}
	}
	f.Add("a=1", "locale=de")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Cookie"] = []string{line1, line2}
		got, ok := cookieValue(r, CookieName)
		c, err := r.Cookie(CookieName)
		if ok != (err == nil) || ok && got != c.Value {
			t.Fatalf("cookieValue(%q, %q) = %q, %v; Cookie: %v, %v", line1, line2, got, ok, c, err)
		}
	})
}

// Negotiation allocates nothing once it has seen what a request carries: a query, a
// cookie, an Accept-Language header with several tags.
func TestNegotiateAllocatesNothing(t *testing.T) {
	n := NewNegotiator(language.English, language.German, language.MustParse("de-CH"), language.French)
	for _, tc := range []struct{ target, header, value string }{
		{"/", "", ""},
		{"/?page=2&locale=de", "", ""},
		{"/", "Cookie", "session=abc; locale=fr"},
		{"/", "Accept-Language", "de-CH, de;q=0.9, fr;q=0.7, en-GB;q=0.5, *;q=0.1"},
		{"/", "Accept-Language", "ja, ko"},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		if tc.header != "" {
			r.Header.Set(tc.header, tc.value)
		}
		want := n.Negotiate(r)
		allocs := testing.AllocsPerRun(100, func() {
			if got := n.Negotiate(r); got != want {
				t.Fatalf("%s, then %s", want, got)
			}
		})
		assert.Zero(t, allocs, "%s %s: %s", tc.target, tc.header, tc.value)
	}
}

// What matching remembers is bounded, and answers stay right when it starts afresh,
// under concurrent use.
func TestAnswersBounded(t *testing.T) {
	n := NewNegotiator(language.English, language.German)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3 * maxAnswers {
				h := fmt.Sprintf("x-%d-%d, de;q=0.5", g, i)
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Accept-Language", h)
				if got := n.Negotiate(r); got != language.German {
					t.Errorf("%s: %s", h, got)
					return
				}
				if _, ok := n.Match(h); ok {
					t.Errorf("Match(%q) matched", h)
					return
				}
			}
		})
	}
	wg.Wait()
	n.headers.mu.Lock()
	defer n.headers.mu.Unlock()
	assert.LessOrEqual(t, len(n.headers.m), maxAnswers)
	long := strings.Repeat("x", maxAnswerKey+1)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Language", long+", de")
	n.headers.mu.Unlock()
	assert.Equal(t, language.German, n.Negotiate(r), "a long header is matched, not remembered")
	n.headers.mu.Lock()
	_, remembered := n.headers.m[long+", de"]
	assert.False(t, remembered)
}

// A remembered answer does not keep the request's memory: the key is a copy.
func TestAnswersCopyKeys(t *testing.T) {
	n := NewNegotiator(language.English, language.German)
	header := "fr, de;q=0.5, en;q=0.1"
	tags := header[:2] // a string sharing a larger one's memory, as header values may
	_, ok := n.Match(tags)
	require.False(t, ok)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Language", header)
	assert.Equal(t, language.German, n.Negotiate(r))
	for k := range n.tags.m {
		assert.NotSame(t, unsafe.StringData(tags), unsafe.StringData(k))
	}
	for k := range n.headers.m {
		assert.NotSame(t, unsafe.StringData(header), unsafe.StringData(k))
	}
}
