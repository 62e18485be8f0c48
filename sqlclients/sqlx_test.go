package sqlclients_test

import (
	"net/http"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/tenantsql"
)

// sqlx: the driver name only chooses the placeholder style ($1).
var sqlxDB = sqlx.NewDb(tenantsql.Open(), "pgx")

type sqlxDocument struct {
	ID    int64  `db:"id"`
	Title string `db:"title"`
}

func TestSqlx(t *testing.T) {
	a, b := "sqlx_a", "sqlx_b"
	mgr := setup(t, a, b)
	titles := func(name string) []string {
		var got []string
		serve(t, mgr, name, http.StatusOK, func(w http.ResponseWriter, r *http.Request) {
			require.NoError(t, sqlxDB.SelectContext(r.Context(), &got, "SELECT title FROM documents ORDER BY id"))
		})
		return got
	}

	serve(t, mgr, a, http.StatusCreated, func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		_, err := sqlxDB.NamedExecContext(ctx, "INSERT INTO documents (title) VALUES (:title)", sqlxDocument{Title: "named"})
		require.NoError(t, err)
		var doc sqlxDocument
		require.NoError(t, sqlxDB.GetContext(ctx, &doc, "SELECT id, title FROM documents WHERE title = $1", "named"))
		assert.Equal(t, sqlxDocument{ID: 2, Title: "named"}, doc)

		tx, err := sqlxDB.BeginTxx(ctx, nil)
		require.NoError(t, err)
		tx.MustExecContext(ctx, "INSERT INTO documents (title) VALUES ($1)", "rolled back")
		require.NoError(t, tx.Rollback())
		w.WriteHeader(http.StatusCreated)
	})
	serve(t, mgr, a, http.StatusInternalServerError, func(w http.ResponseWriter, r *http.Request) {
		sqlxDB.MustExecContext(r.Context(), "INSERT INTO documents (title) VALUES ($1)", "request failed")
		fail(w)
	})

	assert.Equal(t, []string{a, "named"}, titles(a))
	assert.Equal(t, []string{b}, titles(b), "the other tenant, on the same backend")
}
