package locale_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"golang.org/x/text/language"

	"github.com/tenantkit/tenant/locale"
)

func ExampleNegotiator_Negotiate() {
	n := locale.NewNegotiator(language.English, language.German, language.French)

	r := httptest.NewRequest("GET", "/documents", nil)
	r.Header.Set("Accept-Language", "fr-CH, fr;q=0.9, de;q=0.8")
	fmt.Println(n.Negotiate(r))

	r = httptest.NewRequest("GET", "/documents?locale=de", nil) // a language switch
	r.Header.Set("Accept-Language", "fr")
	fmt.Println(n.Negotiate(r))

	r = httptest.NewRequest("GET", "/documents", nil)
	r.Header.Set("Accept-Language", "ja")
	fmt.Println(n.Negotiate(r)) // the default
	// Output:
	// fr
	// de
	// en
}

func ExampleText() {
	title := locale.Text{"en": "Annual report", "de": "Jahresbericht"}
	fmt.Println(title.Get(language.MustParse("de-CH")))                           // parent
	fmt.Println(title.Get(language.French, language.English))                     // default
	fmt.Printf("%q\n", title.Get(language.French))                                // nothing
	ctx := locale.NewContext(context.Background(), language.German, language.Und) // what the middleware does
	fmt.Println(title.In(ctx))
	// Output:
	// Jahresbericht
	// Annual report
	// ""
	// Jahresbericht
}

func ExampleLocalized() {
	ctx := locale.NewContext(context.Background(), language.MustParse("de-CH"), language.English)
	title := locale.Localized(ctx, "title")
	fmt.Println("SELECT id FROM documents ORDER BY " + title.SQL(1))
	fmt.Println(title.Arg())
	// Output:
	// SELECT id FROM documents ORDER BY coalesce("title"->>(($1::text[])[1]), "title"->>(($1::text[])[2]), "title"->>(($1::text[])[3]))
	// [de-CH de en]
}
