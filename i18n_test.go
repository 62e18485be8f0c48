package tenant_test

import (
	"context"
	"net/http"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/locale"
	"github.com/tenantkit/tenant/tenantctx"
)

var i18nMigrations = fstest.MapFS{
	"001_docs.sql": {Data: []byte("CREATE TABLE docs (id int PRIMARY KEY, title jsonb NOT NULL DEFAULT '{}')")},
}

// onegov's i18n test, ported: translated columns with locale fallback, against
// PostgreSQL, the locale switched per unit of work instead of globally.
func TestTranslatedColumnsFallback(t *testing.T) {
	ctx := context.Background()
	a := newTenantName("i18n")
	deCH := language.MustParse("de-CH")
	e := newEnv(t, 2, tenant.Config{Locales: []language.Tag{language.English, deCH}, Migrations: i18nMigrations}, a)
	in := func(tag language.Tag, fn func(ctx context.Context, db tenantctx.DB) error) {
		t.Helper()
		require.NoError(t, e.mgr.Run(ctx, a, func(ctx context.Context) error { return fn(ctx, tenantctx.Session(ctx)) }, tenant.WithLocale(tag)))
	}
	read := func(tag language.Tag) (got string) {
		in(tag, func(ctx context.Context, db tenantctx.DB) error {
			var title locale.Text
			if err := db.QueryRow(ctx, "SELECT title FROM docs WHERE id = 1").Scan(&title); err != nil {
				return err
			}
			got = title.In(ctx)
			return nil
		})
		return got
	}
	write := func(tag language.Tag, v string) {
		in(tag, func(ctx context.Context, db tenantctx.DB) error {
			var title locale.Text
			if err := db.QueryRow(ctx, "SELECT title FROM docs WHERE id = 1").Scan(&title); err != nil {
				return err
			}
			title.Set(ctx, v)
			_, err := db.Exec(ctx, "UPDATE docs SET title = $1 WHERE id = 1", title)
			return err
		})
	}
	matches := func(tag language.Tag, v string) (n int) {
		in(tag, func(ctx context.Context, db tenantctx.DB) error {
			title := locale.Localized(ctx, "title")
			return db.QueryRow(ctx, "SELECT count(*) FROM docs WHERE "+title.SQL(1)+" = $2", title.Arg(), v).Scan(&n)
		})
		return n
	}

	in(language.English, func(ctx context.Context, db tenantctx.DB) error {
		_, err := db.Exec(ctx, "INSERT INTO docs (id) VALUES (1)")
		return err
	})
	write(language.English, "no")
	assert.Equal(t, "no", read(language.English))
	assert.Equal(t, "no", read(deCH), "fallback to the default")
	write(deCH, "nein")
	assert.Equal(t, "nein", read(deCH))
	assert.Equal(t, "no", read(language.English))
	assert.Equal(t, 1, matches(deCH, "nein"))
	assert.Equal(t, 0, matches(language.English, "nein"), "the filter follows the locale")
	assert.Equal(t, 1, matches(language.English, "no"))
	assert.Equal(t, 0, matches(deCH, "no"))
}

func TestMiddlewareNegotiatesLocale(t *testing.T) {
	a := newTenantName("neg")
	deCH := language.MustParse("de-CH")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader, Locales: []language.Tag{language.English, language.German, deCH}}, a)
	var got []language.Tag
	inner := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, locale.FromContext(r.Context()))
		assert.Equal(t, language.English, locale.FallbackFromContext(r.Context()))
		if r.URL.Query().Get("replace") != "" {
			w.Header().Set("Vary", "X-Mine") // a handler that clobbers Vary
		}
	}))
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Origin") // e.g. a CORS middleware
		inner.ServeHTTP(w, r)
	})
	rec := do(outer, "GET", "/", nil, "X-Tenant", a, "Accept-Language", "de-CH;q=0.9, de;q=0.8")
	assert.Equal(t, "de-CH", rec.Header().Get("Content-Language"))
	assert.Equal(t, []string{"Origin", "Accept-Language", "Cookie"}, rec.Header().Values("Vary"))

	rec = do(outer, "GET", "/?locale=de&replace=1", nil, "X-Tenant", a, "Cookie", "locale=en")
	assert.Equal(t, "de", rec.Header().Get("Content-Language"))
	assert.Equal(t, []string{"X-Mine", "Accept-Language", "Cookie"}, rec.Header().Values("Vary"))

	do(outer, "GET", "/", nil, "X-Tenant", a, "Cookie", "locale=de-CH", "Accept-Language", "en")
	do(outer, "GET", "/", nil, "X-Tenant", a, "Accept-Language", "fr, ja")
	assert.Equal(t, []language.Tag{deCH, language.German, deCH, language.English}, got)

	// Without Config.Locales there is no negotiation and no header.
	b := newTenantName("plain")
	plain := newEnv(t, 1, tenant.Config{Resolver: byHeader}, b)
	var plainLocale language.Tag
	h := tenant.Middleware(plain.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainLocale = locale.FromContext(r.Context())
	}))
	rec = do(h, "GET", "/", nil, "X-Tenant", b, "Accept-Language", "de")
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, language.Und, plainLocale)
	assert.Empty(t, rec.Header().Get("Content-Language"))
	assert.Empty(t, rec.Header().Values("Vary"))
}
