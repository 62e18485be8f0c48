package app

import (
	_ "embed"
	"html/template"
	"net/http"

	"golang.org/x/text/language"

	"github.com/tenantkit/tenant/locale"
	"github.com/tenantkit/tenant/tenantctx"
)

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// ui is the page's own text per locale.
type ui struct {
	Documents, None, Add, TitleEN, TitleDE, Save, Language, Changes string
}

var uiText = map[language.Tag]ui{
	language.English: {"Documents", "No documents yet.", "Add a document", "Title in English", "Title in German", "Add", "Language", "Recent changes"},
	language.German:  {"Dokumente", "Noch keine Dokumente.", "Dokument hinzufügen", "Titel auf Englisch", "Titel auf Deutsch", "Hinzufügen", "Sprache", "Letzte Änderungen"},
}

var languageNames = map[language.Tag]string{language.English: "English", language.German: "Deutsch"}

type pageLanguage struct {
	Tag, Name string
	Current   bool
}

// page shows the tenant's documents in the negotiated locale, a form that adds one
// (a plain POST, no JavaScript) and a language switch. Following a switch link
// (?locale=de) remembers the choice in the locale cookie.
func (a *App) page(w http.ResponseWriter, r *http.Request) {
	if tag, ok := supported(r.URL.Query().Get(locale.QueryParam)); ok {
		http.SetCookie(w, &http.Cookie{Name: locale.CookieName, Value: tag.String(), Path: "/",
			MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode, HttpOnly: true})
	}
	a.renderPage(w, r, http.StatusOK, "")
}

func (a *App) renderPage(w http.ResponseWriter, r *http.Request, status int, formError string) {
	docs, err := a.documents(r)
	if err != nil {
		a.serverError(w, r, "could not read documents", err)
		return
	}
	current := locale.FromContext(r.Context())
	langs := make([]pageLanguage, len(Locales))
	for i, t := range Locales {
		langs[i] = pageLanguage{Tag: t.String(), Name: languageNames[t], Current: t == current}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	err = pageTemplate.Execute(w, map[string]any{
		"Tenant":    tenantctx.Schema(r.Context()),
		"Lang":      current.String(),
		"T":         uiText[current],
		"Languages": langs,
		"Documents": docs,
		"Base":      base(r),
		"Error":     formError,
		"Changes":   a.recent.of(tenantctx.Schema(r.Context())),
	})
	if err != nil {
		a.log.ErrorContext(r.Context(), "render page", "error", err)
	}
}
