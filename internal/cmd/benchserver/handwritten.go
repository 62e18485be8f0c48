package main

import (
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/schema"
)

// handWritten is the baseline: what a careful application writes without the library.
// A pooled connection, one round trip that begins the transaction and sets the
// tenant's search_path (BEGIN ISOLATION LEVEL ...; SET LOCAL search_path TO ...), the
// SELECT, COMMIT: three round trips. Its statement is shared by every tenant, so
// PostgreSQL plans it again whenever the search_path changes.
func handWritten(p *pgxpool.Pool, isolation string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := tenantOf(r)
		id, idOK := documentID(r)
		if !ok || !idOK {
			http.NotFound(w, r)
			return
		}
		ctx := r.Context()
		tx, err := p.BeginTx(ctx, pgx.TxOptions{
			BeginQuery: "BEGIN ISOLATION LEVEL " + isolation + "; SET LOCAL search_path TO " + schema.SearchPath(name),
		})
		if err != nil {
			writeTitle(w, nil, err)
			return
		}
		defer func() { _ = tx.Rollback(ctx) }()
		var title []byte
		if err := tx.QueryRow(ctx, selectTitle, id).Scan(&title); err != nil {
			writeTitle(w, nil, err)
			return
		}
		writeTitle(w, title, tx.Commit(ctx))
	}
}
