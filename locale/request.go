package locale

import (
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
)

// queryValue and cookieValue read one value out of a request as r.URL.Query().Get and
// r.Cookie do, without parsing (and allocating) every other one: negotiation runs
// for every request. They follow net/http's and net/url's rules, limits included;
// when GODEBUG sets one of those limits to other than its default (urlmaxqueryparams,
// httpcookiemaxnum, in the environment at start or by the main module), they leave
// the work to net/http and net/url, which know the setting.
var customQueryLimit, customCookieLimit = godebugSets("urlmaxqueryparams"), godebugSets("httpcookiemaxnum")

// Defaults of net/url's and net/http's limits: above them, they see no parameter and
// no cookie at all.
const (
	maxQueryParams = 10000
	maxCookies     = 3000
)

// godebugSets reports whether the program's GODEBUG settings name setting.
func godebugSets(setting string) bool {
	if strings.Contains(os.Getenv("GODEBUG"), setting) {
		return true
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "DefaultGODEBUG" && strings.Contains(s.Value, setting) {
				return true
			}
		}
	}
	return false
}

// queryValue returns u.Query().Get(key): the first value of key among the
// well-formed pairs of the query, "" when there is none.
func queryValue(u *url.URL, key string) string {
	q := u.RawQuery
	switch {
	case q == "":
		return ""
	case customQueryLimit:
		return u.Query().Get(key)
	case strings.Count(q, "&")+1 > maxQueryParams:
		return ""
	}
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if !unescapesTo(k, key) {
			continue
		}
		if !strings.ContainsAny(v, "%+") {
			return v
		}
		if v, err := url.QueryUnescape(v); err == nil {
			return v
		}
	}
	return ""
}

// unescapesTo reports whether url.QueryUnescape(escaped) is want, without error.
func unescapesTo(escaped, want string) bool {
	j := 0
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return false
			}
			c = unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			i += 2
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// cookieValue returns the value of r.Cookie(name), and whether there is one: the
// first well-formed cookie of that name, quotes removed.
func cookieValue(r *http.Request, name string) (string, bool) {
	lines := r.Header["Cookie"]
	switch {
	case len(lines) == 0:
		return "", false
	case customCookieLimit:
		c, err := r.Cookie(name)
		if err != nil {
			return "", false
		}
		return c.Value, true
	}
	count := 0
	for _, line := range lines {
		count += strings.Count(line, ";") + 1
	}
	if count > maxCookies {
		return "", false
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

// validCookieValue is net/http's rule for the bytes of a cookie value.
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

// firstHeader is h.Get(key) for a key in canonical form.
func firstHeader(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
