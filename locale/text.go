package locale

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	"golang.org/x/text/language"
)

// Text is the translations of one value, keyed by BCP 47 tag ("en", "de-CH"). It is
// stored as JSONB (pgx encodes and decodes it as a map) or as hstore (see
// RegisterHstore).
type Text map[string]string

// Get returns the text for tag, falling back to its parents ("de-CH" → "de"), then to
// each of defaults and their parents, then "". Keys compare case-insensitively.
func (t Text) Get(tag language.Tag, defaults ...language.Tag) string {
	v, _, _ := t.Lookup(tag, defaults...)
	return v
}

// Lookup is Get that also tells which key served the text ("de" for tag de-CH when
// only "de" exists), so a response can say what language it really contains.
func (t Text) Lookup(tag language.Tag, defaults ...language.Tag) (text, key string, ok bool) {
	for _, key := range Chain(tag, defaults...) {
		if v, ok := t.lookup(key); ok {
			return v, key, true
		}
	}
	return "", "", false
}

// In returns the text in the context's locale (FromContext), falling back as Get
// does to the context's default locale (FallbackFromContext).
func (t Text) In(ctx context.Context) string {
	return t.Get(FromContext(ctx), FallbackFromContext(ctx))
}

// Set writes v as the text in the context's locale (the default locale when none was
// negotiated), making the map if needed.
func (t *Text) Set(ctx context.Context, v string) {
	tag := FromContext(ctx)
	if tag == language.Und {
		tag = FallbackFromContext(ctx)
	}
	t.SetTag(tag, v)
}

// SetTag writes v as the text for tag, replacing an entry that differs only in case.
func (t *Text) SetTag(tag language.Tag, v string) {
	if *t == nil {
		*t = Text{}
	}
	key := tag.String()
	for k := range *t {
		if strings.EqualFold(k, key) {
			delete(*t, k)
		}
	}
	(*t)[key] = v
}

func (t Text) lookup(key string) (string, bool) {
	if v, ok := t[key]; ok {
		return v, true
	}
	for k, v := range t {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// Chain lists the keys tried for tag: the tag, its parents, then each default and
// its parents, without duplicates and without "und".
func Chain(tag language.Tag, defaults ...language.Tag) []string {
	var keys []string
	seen := map[string]bool{}
	for _, t := range append([]language.Tag{tag}, defaults...) {
		for ; t != language.Und; t = t.Parent() {
			if k := t.String(); !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// HstoreValue lets pgx write a Text to an hstore column.
func (t Text) HstoreValue() (pgtype.Hstore, error) {
	h := make(pgtype.Hstore, len(t))
	for k, v := range t {
		h[k] = &v
	}
	return h, nil
}

// ScanHstore lets pgx read an hstore column into a Text (NULL values are skipped).
func (t *Text) ScanHstore(h pgtype.Hstore) error {
	if h == nil {
		*t = nil
		return nil
	}
	*t = make(Text, len(h))
	for k, v := range h {
		if v != nil {
			(*t)[k] = *v
		}
	}
	return nil
}
