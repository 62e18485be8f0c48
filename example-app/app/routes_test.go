package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/example-app/app"
)

func TestHealthz(t *testing.T) {
	f := newFixture(t, app.Config{})
	acquires := f.pool.Stat().AcquireCount()
	for _, host := range []string{"localhost:8080", "acme.localhost:8080", "nosuch.localhost"} {
		req, _ := http.NewRequest("GET", "/healthz", nil)
		req.Host = host
		rec := newRecorder(f.h, req)
		assert.Equal(t, 200, rec.Code)
		assert.Equal(t, "ok", rec.Body.String())
	}
	assert.Equal(t, acquires, f.pool.Stat().AcquireCount(), "no database work")

	// Healthy even when the database is not.
	down, err := app.New(context.Background(), app.Config{DSN: "postgres://x@127.0.0.1:1/x?connect_timeout=1"})
	require.NoError(t, err)
	defer down.Close()
	req, _ := http.NewRequest("GET", "/healthz", nil)
	assert.Equal(t, 200, newRecorder(down.Handler(), req).Code)
}

func TestDocumentsBothStyles(t *testing.T) {
	f := newFixture(t, app.Config{})
	for name, s := range styles {
		t.Run(name, func(t *testing.T) {
			tn := f.tenant(t)
			rec := f.do(s, tn, "GET", "/documents", "")
			assert.Equal(t, 200, rec.Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.Equal(t, "[]\n", rec.Body.String(), "an empty list is [], not null")

			rec = f.do(s, tn, "POST", "/documents", `{"title": {"en": "Report", "de": "Bericht"}}`)
			require.Equal(t, 201, rec.Code, rec.Body.String())
			created := decode[doc](t, rec.Body)
			assert.Positive(t, created.ID)
			assert.Equal(t, doc{ID: created.ID, Title: "Report", Locale: "en", Translations: map[string]string{"en": "Report", "de": "Bericht"}}, created)

			f.do(s, tn, "POST", "/documents", `{"title": {"en": "English only"}}`)
			rec = f.do(s, tn, "GET", "/documents", "", "Accept-Language", "de-CH, de;q=0.9")
			assert.Equal(t, "de", rec.Header().Get("Content-Language"))
			list := decode[[]doc](t, rec.Body)
			require.Len(t, list, 2)
			assert.Equal(t, doc{ID: created.ID, Title: "Bericht", Locale: "de"}, list[0])
			assert.Equal(t, "English only", list[1].Title, "falls back to the default")
			assert.Equal(t, "en", list[1].Locale, "and says which language it served")

			rec = f.do(s, tn, "GET", fmt.Sprintf("/documents/%d", created.ID), "", "Accept-Language", "de")
			assert.Equal(t, 200, rec.Code)
			assert.Equal(t, doc{ID: created.ID, Title: "Bericht", Locale: "de", Translations: map[string]string{"en": "Report", "de": "Bericht"}}, decode[doc](t, rec.Body))

			assert.Equal(t, 204, f.do(s, tn, "DELETE", fmt.Sprintf("/documents/%d", created.ID), "").Code)
			assert.Equal(t, 404, f.do(s, tn, "GET", fmt.Sprintf("/documents/%d", created.ID), "").Code)
			assert.Equal(t, 404, f.do(s, tn, "DELETE", fmt.Sprintf("/documents/%d", created.ID), "").Code)
			assert.Equal(t, 404, f.do(s, tn, "GET", "/documents/abc", "").Code)
			assert.Equal(t, 404, f.do(s, tn, "GET", "/documents/-1", "").Code)
		})
	}
}

func TestCreateDocumentRejectsBadInput(t *testing.T) {
	f := newFixture(t, app.Config{})
	tn := f.tenant(t)
	for _, body := range []string{
		`{"title": {"en": "x"`,
		`not json`,
		`{"title": {"en": "x"}} {"title": {}}`,
		`{"title": {}}`,
		`{}`,
		`{"title": {"fr": "Bonjour"}}`,
		`{"title": {"en": "ok", "xx-!!": "bad"}}`,
		`{"title": {"en-US": "regional is not a supported locale"}}`,
		`{"title": {"en": "   "}}`,
		`{"title": {"en": "` + strings.Repeat("x", 201) + `"}}`,
		`{"title": {"en": "x"}, "extra": 1}`,
		`{"title": ["en", "x"]}`,
	} {
		t.Run(body[:min(len(body), 40)], func(t *testing.T) {
			rec := f.do(bySubdomain, tn, "POST", "/documents", body)
			assert.Equal(t, 400, rec.Code, rec.Body.String())
			assert.Less(t, len(rec.Body.String()), 120, "a short message")
			assert.NotContains(t, rec.Body.String(), "pgx")
		})
	}
	assert.Zero(t, f.count(t, tn), "nothing stored")

	rec := f.do(bySubdomain, tn, "POST", "/documents", `{"title": {"EN": "case does not matter"}}`)
	assert.Equal(t, 201, rec.Code)
	assert.Equal(t, map[string]string{"en": "case does not matter"}, decode[doc](t, rec.Body).Translations)
}

func TestDryRun(t *testing.T) {
	f := newFixture(t, app.Config{})
	tn := f.tenant(t)
	rec := f.do(byPath, tn, "POST", "/documents?dry_run=1", `{"title": {"de": "Nur ein Test"}}`)
	assert.Equal(t, 200, rec.Code)
	d := decode[doc](t, rec.Body)
	assert.Equal(t, "Nur ein Test", d.Title)
	assert.Equal(t, "de", d.Locale)
	assert.Equal(t, map[string]string{"de": "Nur ein Test"}, d.Translations)
	assert.Zero(t, f.count(t, tn), "nothing stored")
}

func TestCounter(t *testing.T) {
	f := newFixture(t, app.Config{})
	tn := f.tenant(t)
	rec := f.do(bySubdomain, tn, "GET", "/counter", "")
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, map[string]int{"value": 0}, decode[map[string]int](t, rec.Body))
	rec = f.do(byPath, tn, "POST", "/counter", "")
	assert.Equal(t, map[string]int{"value": 1}, decode[map[string]int](t, rec.Body))

	var ok, conflict atomic.Int32
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range 15 {
				switch rec := f.do(bySubdomain, tn, "POST", "/counter", ""); rec.Code {
				case 200:
					ok.Add(1)
				case 409:
					conflict.Add(1)
				default:
					t.Errorf("unexpected %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
	wg.Wait()
	rec = f.do(bySubdomain, tn, "GET", "/counter", "")
	assert.Equal(t, map[string]int{"value": 1 + int(ok.Load())}, decode[map[string]int](t, rec.Body))
	t.Logf("200: %d, 409: %d", ok.Load(), conflict.Load())
}

// Every route but /healthz answers 404 "unknown tenant" without a valid, known tenant.
func TestUnknownTenantEverywhere(t *testing.T) {
	f := newFixture(t, app.Config{})
	routes := [][2]string{{"GET", "/"}, {"GET", "/documents"}, {"POST", "/documents"}, {"GET", "/documents/1"},
		{"DELETE", "/documents/1"}, {"GET", "/counter"}, {"POST", "/counter"}}
	for _, rt := range routes {
		for _, tc := range []struct{ host, target string }{
			{"nosuch.localhost:8080", rt[1]},
			{"localhost:8080", "/t/nosuch" + rt[1]},
			{"localhost:8080", "/t/Bad--name" + rt[1]},
			{"localhost:8080", "/t/pg_catalog" + rt[1]},
			{"localhost:8080", rt[1]},
			{"www.localhost", rt[1]},
			{"127.0.0.1:8080", rt[1]},
		} {
			req, _ := http.NewRequest(rt[0], tc.target, strings.NewReader(`{"title": {"en": "x"}}`))
			req.Host = tc.host
			rec := newRecorder(f.h, req)
			assert.Equal(t, 404, rec.Code, "%s %s%s", rt[0], tc.host, tc.target)
			assert.Equal(t, "unknown tenant\n", rec.Body.String(), "%s %s%s", rt[0], tc.host, tc.target)
		}
	}
}

func TestAutoCreate(t *testing.T) {
	off := newFixture(t, app.Config{})
	assert.Equal(t, 404, off.do(bySubdomain, "fresh_tenant_x", "GET", "/documents", "").Code)

	on := newFixture(t, app.Config{AutoCreate: true})
	t.Cleanup(func() { _ = on.app.Manager().Drop(context.Background(), "fresh_tenant_y") })
	rec := on.do(bySubdomain, "fresh_tenant_y", "GET", "/documents", "")
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "[]\n", rec.Body.String())
	assert.Equal(t, 404, on.do(bySubdomain, "Invalid--Name", "GET", "/documents", "").Code, "never for an invalid name")
}

func TestPageAndForm(t *testing.T) {
	f := newFixture(t, app.Config{})
	for name, s := range styles {
		t.Run(name, func(t *testing.T) {
			tn := f.tenant(t)
			rec := f.do(s, tn, "GET", "/", "")
			assert.Equal(t, 200, rec.Code)
			assert.Contains(t, rec.Header().Get("Content-Type"), "text/html")
			assert.Contains(t, rec.Body.String(), "No documents yet.")

			host, target := s(tn, "/documents")
			form := url.Values{"title_en": {"From the form <b>"}, "title_de": {"Aus dem Formular"}}
			req, _ := http.NewRequest("POST", target, strings.NewReader(form.Encode()))
			req.Host = host
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec = newRecorder(f.h, req)
			assert.Equal(t, 303, rec.Code)
			_, page := s(tn, "/")
			assert.Equal(t, page, rec.Header().Get("Location"), "back to the tenant's page")

			rec = f.do(s, tn, "GET", "/", "")
			assert.Contains(t, rec.Body.String(), "From the form &lt;b&gt;", "escaped")
			assert.Equal(t, "en", rec.Header().Get("Content-Language"))

			rec = f.do(s, tn, "GET", "/?locale=de", "")
			assert.Contains(t, rec.Body.String(), "Aus dem Formular")
			assert.Contains(t, rec.Body.String(), "Dokumente")
			cookie := rec.Result().Cookies()
			require.Len(t, cookie, 1)
			assert.Equal(t, "locale", cookie[0].Name)
			assert.Equal(t, "de", cookie[0].Value)

			rec = f.do(s, tn, "GET", "/", "", "Cookie", "locale=de")
			assert.Contains(t, rec.Body.String(), "Aus dem Formular", "the cookie keeps the choice")

			req, _ = http.NewRequest("POST", target, strings.NewReader(url.Values{"title_en": {""}}.Encode()))
			req.Host = host
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec = newRecorder(f.h, req)
			assert.Equal(t, 400, rec.Code)
			assert.Contains(t, rec.Body.String(), "the title needs at least one translation")
			assert.Equal(t, 1, f.count(t, tn))
		})
	}
}

// A title is served in the first language of the request's chain it has (the locale,
// the default, then any served locale), and says which; one in none of them is empty,
// in the request's locale. Both for one document and for the list.
func TestTitleFallback(t *testing.T) {
	f := newFixture(t, app.Config{})
	tn := f.tenant(t)
	_, err := f.pool.Exec(context.Background(), `INSERT INTO "`+tn+`".documents (id, title) VALUES
		(1, '{"de": "Nur Deutsch"}'), (2, '{"fr": "Bonjour"}'), (3, '{"en": "Both", "de": "Beides"}')`)
	require.NoError(t, err)
	translations := []map[string]string{{"de": "Nur Deutsch"}, {"fr": "Bonjour"}, {"en": "Both", "de": "Beides"}}
	for _, tc := range []struct {
		lang string
		want []doc
	}{
		{"en", []doc{{ID: 1, Title: "Nur Deutsch", Locale: "de"}, {ID: 2, Title: "", Locale: "en"}, {ID: 3, Title: "Both", Locale: "en"}}},
		{"de-AT", []doc{{ID: 1, Title: "Nur Deutsch", Locale: "de"}, {ID: 2, Title: "", Locale: "de"}, {ID: 3, Title: "Beides", Locale: "de"}}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			rec := f.do(bySubdomain, tn, "GET", "/documents", "", "Accept-Language", tc.lang)
			require.Equal(t, 200, rec.Code, rec.Body.String())
			assert.Equal(t, tc.want, decode[[]doc](t, rec.Body))
			for i, want := range tc.want {
				rec := f.do(byPath, tn, "GET", fmt.Sprintf("/documents/%d", want.ID), "", "Accept-Language", tc.lang)
				require.Equal(t, 200, rec.Code, rec.Body.String())
				want.Translations = translations[i]
				assert.Equal(t, want, decode[doc](t, rec.Body))
			}
		})
	}
}
