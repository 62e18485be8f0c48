package main

import (
	"net/http"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// autocommit is the floor of any database-backed request: one schema-qualified
// statement (SELECT ... FROM "tenant".documents WHERE id = $1) outside any explicit
// transaction, one round trip. No isolation level is chosen, nothing binds the
// transaction to its tenant, and nothing is reset.
func autocommit(p *pgxpool.Pool) http.HandlerFunc {
	var queries sync.Map // tenant name → its statement
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := tenantOf(r)
		id, idOK := documentID(r)
		if !ok || !idOK {
			http.NotFound(w, r)
			return
		}
		q, found := queries.Load(name)
		if !found {
			q, _ = queries.LoadOrStore(name, "SELECT title FROM "+pgx.Identifier{name, "documents"}.Sanitize()+" WHERE id = $1")
		}
		var title []byte
		err := p.QueryRow(r.Context(), q.(string), id).Scan(&title)
		writeTitle(w, title, err)
	}
}
