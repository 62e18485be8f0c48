package main

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/schema"
)

// tenantHeader names the tenant of a request to every server of this command.
const tenantHeader = "X-Tenant"

// selectTitle is the one query of a request, for servers whose search_path names the
// tenant's schema.
const selectTitle = "SELECT title FROM documents WHERE id = $1"

// tenantOf returns the request's tenant schema, if the header names a valid one.
func tenantOf(r *http.Request) (string, bool) {
	name := r.Header.Get(tenantHeader)
	return name, schema.Validate(name) == nil
}

// documentID returns the request's {id}, if it is a positive integer.
func documentID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	return id, err == nil && id > 0
}

// writeTitle answers with the title's JSON, or 404 or 500 for err.
func writeTitle(w http.ResponseWriter, title []byte, err error) {
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		http.Error(w, "document not found", http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(title)
	}
}
