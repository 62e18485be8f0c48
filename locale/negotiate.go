// Package locale negotiates a request's locale and reads and writes translated texts.
//
// The application lists the locales it serves, the first being the default. A request's
// locale comes from, in order: the ?locale= query parameter, the "locale" cookie, the
// Accept-Language header, the default. tenant.Middleware negotiates it and puts it in
// the context (NewContext, FromContext); Text.In and Localized read it from there. Nothing here
// is global: the locale lives in the request's context.
package locale

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/text/language"
)

// CookieName and QueryParam name where a chosen locale is remembered or asked for.
const (
	CookieName = "locale"
	QueryParam = "locale"
)

// Negotiator picks one of the supported locales for a request. Build one per
// application; it is safe for concurrent use.
type Negotiator struct {
	supported []language.Tag
	matcher   language.Matcher
	// Matching with x/text costs microseconds and allocations per request; its answers
	// (an index into supported) are remembered for the strings clients send: tags
	// (query, cookie) and whole Accept-Language headers.
	tags, headers answers
}

// answers remembers which supported locale (its index, -1 for none) a string
// matched. It is bounded: it starts afresh when full, so a flood of distinct strings
// costs what matching costs, and no memory.
type answers struct {
	mu sync.RWMutex
	m  map[string]int
}

// Bounds of answers: how many strings, and how long a string, are remembered.
const (
	maxAnswers   = 512
	maxAnswerKey = 256
)

// get returns the answer for s, computed by match on first sight.
func (a *answers) get(s string, match func(string) int) int {
	if len(s) > maxAnswerKey {
		return match(s)
	}
	a.mu.RLock()
	i, ok := a.m[s]
	a.mu.RUnlock()
	if ok {
		return i
	}
	i = match(s)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil || len(a.m) >= maxAnswers {
		a.m = make(map[string]int)
	}
	a.m[strings.Clone(s)] = i // not a slice of a larger string the request holds
	return i
}

// NewNegotiator serves the given locales; the first is the default. It panics when
// supported is empty.
func NewNegotiator(supported ...language.Tag) *Negotiator {
	if len(supported) == 0 {
		panic("locale.NewNegotiator: no supported locales")
	}
	return &Negotiator{supported: append([]language.Tag(nil), supported...), matcher: language.NewMatcher(supported)}
}

// Default is the first supported locale.
func (n *Negotiator) Default() language.Tag { return n.supported[0] }

// Supported returns the supported locales, default first.
func (n *Negotiator) Supported() []language.Tag { return append([]language.Tag(nil), n.supported...) }

// Negotiate returns one of the supported tags, exactly as given to NewNegotiator (the
// matcher's own result can carry "-u-rg-" extensions): ?locale=, then the locale
// cookie's value, then Accept-Language, then the default. A query or cookie value that
// matches nothing supported is ignored.
//
// It allocates nothing once it has seen the strings a request carries.
func (n *Negotiator) Negotiate(r *http.Request) language.Tag {
	if tag, ok := n.Match(queryValue(r.URL, QueryParam)); ok {
		return tag
	}
	if v, ok := cookieValue(r, CookieName); ok {
		if tag, ok := n.Match(v); ok {
			return tag
		}
	}
	if header := firstHeader(r.Header, "Accept-Language"); header != "" {
		if i := n.headers.get(header, n.matchHeader); i >= 0 {
			return n.supported[i]
		}
	}
	return n.Default()
}

// matchHeader matches an Accept-Language header: the index of the supported locale,
// or -1.
func (n *Negotiator) matchHeader(header string) int {
	if tags := ParseAcceptLanguage(header); len(tags) > 0 {
		if _, i, conf := n.matcher.Match(tags...); conf != language.No {
			return i
		}
	}
	return -1
}

// Match returns the supported locale for one tag as a user wrote it ("de-CH", "en"),
// and whether there was one.
func (n *Negotiator) Match(s string) (language.Tag, bool) {
	if s == "" {
		return language.Und, false
	}
	if i := n.tags.get(s, n.matchTag); i >= 0 {
		return n.supported[i], true
	}
	return language.Und, false
}

// matchTag matches one tag: the index of the supported locale, or -1.
func (n *Negotiator) matchTag(s string) int {
	s = strings.TrimSpace(s)
	if s == "" {
		return -1
	}
	tag, err := language.Parse(s)
	if err != nil {
		return -1
	}
	_, i, conf := n.matcher.Match(tag)
	if conf == language.No {
		return -1
	}
	return i
}

// ParseAcceptLanguage returns the tags of an Accept-Language header by descending
// quality, skipping malformed entries, "*" and q=0 instead of rejecting the whole
// header as language.ParseAcceptLanguage does.
func ParseAcceptLanguage(header string) []language.Tag {
	type weighted struct {
		tag language.Tag
		q   float64
	}
	var entries []weighted
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.TrimSpace(name)
		if name == "" || name == "*" {
			continue
		}
		tag, err := language.Parse(name)
		if err != nil {
			continue
		}
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			if q, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || q < 0 || q > 1 {
				continue
			}
		} else if strings.TrimSpace(params) != "" {
			continue
		}
		if q > 0 {
			entries = append(entries, weighted{tag, q})
		}
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].q > entries[j].q })
	tags := make([]language.Tag, len(entries))
	for i, e := range entries {
		tags[i] = e.tag
	}
	return tags
}

// SetHeaders sets Content-Language to tag and adds Accept-Language and Cookie to Vary,
// merged with the Vary values already there (no duplicates, case-insensitive).
func SetHeaders(h http.Header, tag language.Tag) {
	h.Set("Content-Language", tag.String())
	AddVary(h, "Accept-Language", "Cookie")
}

// AddVary adds fields to the Vary header unless present (or "*" is).
func AddVary(h http.Header, fields ...string) {
	have := map[string]bool{}
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			have[strings.ToLower(strings.TrimSpace(f))] = true
		}
	}
	if have["*"] {
		return
	}
	for _, f := range fields {
		if !have[strings.ToLower(f)] {
			h.Add("Vary", f)
			have[strings.ToLower(f)] = true
		}
	}
}
