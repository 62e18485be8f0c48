package app

import (
	"context"
	"strconv"
	"strings"

	"golang.org/x/text/language"

	"github.com/tenantkit/tenant/locale"
)

// A document's title is a JSONB map of locale tag to text. A request shows it in its
// locale with fallback: the first key of the request's chain (its locale, the
// locale's parents, the default, then every locale the app serves) that the title has.
// The database picks it, so that reading a document decodes no map: the chain travels
// as one text[] parameter (no tag is ever spliced into SQL), and the translations pass
// through as the JSON text PostgreSQL sends. Keys match exactly: the app stores them as
// canonical tags (locale.Text.SetTag), as the chain names them.

// chains holds the chain of each locale the app serves, with the app's default as the
// default: what negotiation gives every request.
var chains = func() map[language.Tag][]string {
	m := make(map[language.Tag][]string, len(Locales))
	for _, tag := range Locales {
		m[tag] = locale.Chain(tag, Locales...)
	}
	return m
}()

// chainOf returns the chain of the request's locale.
func chainOf(ctx context.Context) []string {
	tag, fallback := locale.FromContext(ctx), locale.FallbackFromContext(ctx)
	if c, ok := chains[tag]; ok && fallback == Locales[0] {
		return c
	}
	return locale.Chain(tag, append([]language.Tag{fallback}, Locales...)...)
}

// titleQueries read titles for a chain of some length: each row's position in the
// chain of the key that served its title (0 when none did) and that title.
type titleQueries struct {
	one  string // $1 the id, $2 the chain; also the translations
	list string // $1 the chain; by id
}

// queries holds titleQueries by chain length, for the chains in chains.
var queries = func() map[int]titleQueries {
	m := map[int]titleQueries{}
	for _, c := range chains {
		m[len(c)] = newTitleQueries(len(c))
	}
	return m
}()

// queriesFor returns the titleQueries for a chain of n keys.
func queriesFor(n int) titleQueries {
	if q, ok := queries[n]; ok {
		return q
	}
	return newTitleQueries(n)
}

// newTitleQueries writes the titleQueries for a chain of n keys.
func newTitleQueries(n int) titleQueries {
	return titleQueries{
		one: "SELECT k, coalesce(title ->> (($2::text[])[k]), ''), title FROM (SELECT title, " +
			servingKey(n, 2) + " AS k FROM documents WHERE id = $1) AS d",
		list: "SELECT id, k, coalesce(title ->> (($1::text[])[k]), '') FROM (SELECT id, title, " +
			servingKey(n, 1) + " AS k FROM documents) AS d ORDER BY id",
	}
}

// servingKey is SQL for the position (1-based) of the first key of the chain in
// parameter $param (n keys) that the title has, 0 when it has none.
func servingKey(n, param int) string {
	var b strings.Builder
	b.WriteString("CASE")
	for i := 1; i <= n; i++ {
		key := "(($" + strconv.Itoa(param) + "::text[])[" + strconv.Itoa(i) + "])"
		b.WriteString(" WHEN title ? " + key + " THEN " + strconv.Itoa(i))
	}
	b.WriteString(" ELSE 0 END")
	return b.String()
}

// servedIn returns the locale of a title served by key position k of chain, or the
// request's locale when no key served it (the title is then empty).
func servedIn(ctx context.Context, chain []string, k int32) string {
	if k >= 1 && int(k) <= len(chain) {
		return chain[k-1]
	}
	return locale.FromContext(ctx).String()
}
