package locale

import (
	"context"

	"golang.org/x/text/language"
)

// tags is what NewContext stores: the request's locale and the application's default.
type tags struct{ tag, fallback language.Tag }

type contextKey struct{}

// NewContext returns a context carrying tag, the request's negotiated locale, and
// fallback, the application's default locale (the last fallback of translated texts).
// tenant.Middleware and Manager.Run call it; Text.In, Text.Set and Localized read it.
func NewContext(ctx context.Context, tag, fallback language.Tag) context.Context {
	return context.WithValue(ctx, contextKey{}, tags{tag, fallback})
}

// FromContext returns the request's locale, or language.Und when none was negotiated.
func FromContext(ctx context.Context) language.Tag {
	t, _ := ctx.Value(contextKey{}).(tags)
	return t.tag
}

// FallbackFromContext returns the application's default locale, or language.Und.
func FallbackFromContext(ctx context.Context) language.Tag {
	t, _ := ctx.Value(contextKey{}).(tags)
	return t.fallback
}
