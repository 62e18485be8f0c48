package locale_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant/locale"
)

func TestTextGet(t *testing.T) {
	txt := locale.Text{"en": "no", "de": "nein", "fr-CH": "non (CH)"}
	for _, tc := range []struct {
		tag  string
		def  []language.Tag
		want string
	}{
		{"de", nil, "nein"},
		{"de-CH", nil, "nein"},                             // parent
		{"de-AT", nil, "nein"},                             // parent
		{"fr-CH", nil, "non (CH)"},                         // exact
		{"fr", []language.Tag{language.English}, "no"},     // no fr: default
		{"it", []language.Tag{language.English}, "no"},     // default
		{"it", nil, ""},                                    // nothing
		{"en-GB", nil, "no"},                               // en-GB → en-001 → en
		{"it-CH", []language.Tag{language.German}, "nein"}, // default's chain
	} {
		assert.Equal(t, tc.want, txt.Get(language.MustParse(tc.tag), tc.def...), tc.tag)
	}
	assert.Equal(t, "x", locale.Text{"DE-ch": "x"}.Get(language.MustParse("de-CH")), "keys compare case-insensitively")
	assert.Equal(t, "", locale.Text(nil).Get(language.German))

	v, key, ok := txt.Lookup(language.MustParse("de-CH"), language.English)
	assert.Equal(t, []any{"nein", "de", true}, []any{v, key, ok})
	v, key, ok = txt.Lookup(language.Italian, language.English)
	assert.Equal(t, []any{"no", "en", true}, []any{v, key, ok})
	_, _, ok = txt.Lookup(language.Italian)
	assert.False(t, ok)
}

func TestTextInAndSet(t *testing.T) {
	ctx := locale.NewContext(context.Background(), language.Und, language.English)
	var txt locale.Text
	txt.Set(ctx, "no") // no locale negotiated: the default
	assert.Equal(t, locale.Text{"en": "no"}, txt)

	de := locale.NewContext(ctx, language.MustParse("de-CH"), language.English)
	assert.Equal(t, "no", txt.In(de))
	txt.Set(de, "nein")
	assert.Equal(t, "nein", txt.In(de))
	assert.Equal(t, "no", txt.In(locale.NewContext(ctx, language.English, language.English)))

	txt.SetTag(language.MustParse("de-CH"), "neei")
	txt2 := locale.Text{"de-ch": "old"}
	txt2.SetTag(language.MustParse("de-CH"), "new")
	assert.Equal(t, locale.Text{"de-CH": "new"}, txt2, "a key differing in case is replaced")
}

func TestChain(t *testing.T) {
	assert.Equal(t, []string{"de-CH", "de", "en"}, locale.Chain(language.MustParse("de-CH"), language.English))
	assert.Equal(t, []string{"en"}, locale.Chain(language.English, language.English))
	assert.Empty(t, locale.Chain(language.Und))
}
