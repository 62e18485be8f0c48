package main

import "net/http"

// constantTitle is what the server without a database answers: about the size of a
// document's title.
var constantTitle = []byte(`{"de": "Dokument 1", "en": "Document 1"}`)

// noDatabase is the ceiling: the same route through chi, a constant body, no database.
func noDatabase(w http.ResponseWriter, _ *http.Request) {
	writeTitle(w, constantTitle, nil)
}
