package app

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/locale"
	"github.com/tenantkit/tenant/tenantctx"
)

// maxTitle bounds one translation of a title, in characters.
const maxTitle = 200

// document is the JSON shape of the API. Translations is the title's JSONB as the
// database sent it, or as the request gave it.
type document struct {
	ID           int64           `json:"id"`
	Title        string          `json:"title"`
	Locale       string          `json:"locale"`
	Translations json.RawMessage `json:"translations,omitempty"`
}

// present shows a title the request gave in the request's locale with fallback, as the
// database does for stored ones (titles.go); Locale says which language the title
// really is in.
func present(r *http.Request, id int64, title locale.Text) (document, error) {
	ctx := r.Context()
	text, key, ok := title.Lookup(locale.FromContext(ctx), append([]language.Tag{locale.FallbackFromContext(ctx)}, Locales...)...)
	if !ok {
		key = locale.FromContext(ctx).String()
	}
	translations, err := json.Marshal(title)
	return document{ID: id, Title: text, Locale: key, Translations: translations}, err
}

func (a *App) listDocuments(w http.ResponseWriter, r *http.Request) {
	docs, err := a.documents(r)
	if err != nil {
		a.serverError(w, r, "could not read documents", err)
		return
	}
	writeJSON(w, http.StatusOK, docs)
}

// documents reads the tenant's documents, each title in the request's locale.
func (a *App) documents(r *http.Request) ([]document, error) {
	ctx := r.Context()
	chain := chainOf(ctx)
	rows, err := tenantctx.Session(ctx).Query(ctx, queriesFor(len(chain)).list, chain)
	if err != nil {
		return nil, err
	}
	docs := []document{}
	var d document
	var k int32
	_, err = pgx.ForEachRow(rows, []any{&d.ID, &k, &d.Title}, func() error {
		d.Locale = servedIn(ctx, chain, k)
		docs = append(docs, d)
		return nil
	})
	return docs, err
}

func (a *App) createDocument(w http.ResponseWriter, r *http.Request) {
	form := isForm(r)
	title, err := readTitle(w, r, form)
	if err != nil {
		if form {
			a.renderPage(w, r, http.StatusBadRequest, err.Error())
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	dryRun := r.URL.Query().Get("dry_run")
	status := http.StatusCreated
	if dryRun == "1" || dryRun == "true" {
		tenantctx.RollbackOnly(r.Context()) // shown, never stored
		status = http.StatusOK
	}
	var id int64
	err = tenantctx.Session(r.Context()).QueryRow(r.Context(),
		"INSERT INTO documents (title) VALUES ($1) RETURNING id", title).Scan(&id)
	if err != nil {
		a.serverError(w, r, "could not save the document", err)
		return
	}
	if form {
		http.Redirect(w, r, base(r)+"/", http.StatusSeeOther)
		return
	}
	d, err := present(r, id, title)
	if err != nil {
		a.serverError(w, r, "could not show the document", err)
		return
	}
	writeJSON(w, status, d)
}

// readTitle reads {"title": {"en": "...", "de": "..."}} or, from the page's form,
// title_en and title_de. Every key must be a supported locale, every text non-empty.
func readTitle(w http.ResponseWriter, r *http.Request, form bool) (locale.Text, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	raw := map[string]string{}
	if form {
		if err := r.ParseForm(); err != nil {
			return nil, errors.New("malformed form")
		}
		for _, tag := range Locales {
			if v := strings.TrimSpace(r.PostForm.Get("title_" + tag.String())); v != "" {
				raw[tag.String()] = v
			}
		}
	} else {
		var body struct {
			Title map[string]string `json:"title"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return nil, errors.New("malformed JSON: want {\"title\": {\"en\": \"...\"}}")
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, errors.New("malformed JSON: one object expected")
		}
		raw = body.Title
	}
	if len(raw) == 0 {
		return nil, errors.New("the title needs at least one translation")
	}
	title := locale.Text{}
	for k, v := range raw {
		tag, ok := supported(k)
		if !ok {
			return nil, fmt.Errorf("unsupported locale %q (supported: %s)", k, supportedList())
		}
		v = strings.TrimSpace(v)
		switch {
		case v == "":
			return nil, fmt.Errorf("the title in %q is empty", k)
		case utf8.RuneCountInString(v) > maxTitle:
			return nil, fmt.Errorf("the title in %q is longer than %d characters", k, maxTitle)
		case !utf8.ValidString(v):
			return nil, fmt.Errorf("the title in %q is not valid UTF-8", k)
		}
		title.SetTag(tag, v)
	}
	return title, nil
}

// supported returns the app locale a key names (case-insensitive), if any.
func supported(key string) (language.Tag, bool) {
	tag, err := language.Parse(key)
	if err != nil {
		return language.Und, false
	}
	for _, s := range Locales {
		if tag == s {
			return s, true
		}
	}
	return language.Und, false
}

func supportedList() string {
	names := make([]string, len(Locales))
	for i, t := range Locales {
		names[i] = t.String()
	}
	return strings.Join(names, ", ")
}

func (a *App) getDocument(w http.ResponseWriter, r *http.Request) {
	id, ok := documentID(r)
	if !ok {
		http.Error(w, "document not found", http.StatusNotFound)
		return
	}
	ctx := r.Context()
	chain := chainOf(ctx)
	d := document{ID: id}
	var k int32
	err := tenantctx.Session(ctx).QueryRow(ctx, queriesFor(len(chain)).one, id, chain).Scan(&k, &d.Title, &d.Translations)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		http.Error(w, "document not found", http.StatusNotFound)
	case err != nil:
		a.serverError(w, r, "could not read the document", err)
	default:
		d.Locale = servedIn(ctx, chain, k)
		writeJSON(w, http.StatusOK, d)
	}
}

func (a *App) deleteDocument(w http.ResponseWriter, r *http.Request) {
	id, ok := documentID(r)
	if !ok {
		http.Error(w, "document not found", http.StatusNotFound)
		return
	}
	tag, err := tenantctx.Session(r.Context()).Exec(r.Context(), "DELETE FROM documents WHERE id = $1", id)
	switch {
	case err != nil:
		a.serverError(w, r, "could not delete the document", err)
	case tag.RowsAffected() == 0:
		http.Error(w, "document not found", http.StatusNotFound)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func documentID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	return id, err == nil && id > 0
}

func (a *App) getCounter(w http.ResponseWriter, r *http.Request) {
	var v int64
	if err := tenantctx.Session(r.Context()).QueryRow(r.Context(), "SELECT value FROM counter WHERE id = 1").Scan(&v); err != nil {
		a.serverError(w, r, "could not read the counter", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"value": v})
}

// incrementCounter is a deliberate read-modify-write: concurrent requests conflict
// under SERIALIZABLE, and the middleware runs them again (409 when retries run out).
func (a *App) incrementCounter(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	db := tenantctx.Session(ctx)
	var v int64
	if err := db.QueryRow(ctx, "SELECT value FROM counter WHERE id = 1").Scan(&v); err != nil {
		a.serverError(w, r, "could not read the counter", err)
		return
	}
	if _, err := db.Exec(ctx, "UPDATE counter SET value = $1 WHERE id = 1", v+1); err != nil {
		a.serverError(w, r, "could not write the counter", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"value": v + 1})
}

// isForm tells the page's form post from an API call. A body starting with '{' is
// JSON whatever its Content-Type says (curl -d sends JSON as a form by default).
func isForm(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/x-www-form-urlencoded") && !strings.HasPrefix(ct, "multipart/form-data") {
		return false
	}
	br := bufio.NewReader(r.Body)
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	for {
		b, err := br.Peek(1)
		if err != nil {
			return true
		}
		if b[0] != ' ' && b[0] != '\t' && b[0] != '\r' && b[0] != '\n' {
			return b[0] != '{'
		}
		_, _ = br.ReadByte()
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serverError logs the detail and answers with a short message. A conflict the
// middleware retries also lands here first; its answer is then discarded.
func (a *App) serverError(w http.ResponseWriter, r *http.Request, msg string, err error) {
	level := slog.LevelError
	if tenant.IsConflict(err) {
		level = slog.LevelDebug // a conflict: the middleware runs the request again
	}
	a.log.Log(r.Context(), level, msg, "tenant", tenantctx.Schema(r.Context()), "error", err)
	http.Error(w, msg, http.StatusInternalServerError)
}
