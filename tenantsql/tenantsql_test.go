package tenantsql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenantsql"
	"github.com/tenantkit/tenant/tenanttest"
)

// Two versions, so that tenants can sit at different ones: a statement prepared for
// one must never be used for the other.
var migrations = fstest.MapFS{
	"001_notes.sql": {Data: []byte(`CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);
		INSERT INTO notes (body) VALUES (current_schema())`)},
	"002_tags.sql": {Data: []byte(`ALTER TABLE notes ADD COLUMN tags text[] NOT NULL DEFAULT '{}'`)},
}

var db = tenantsql.Open()

// setup makes a Manager on a pool of one connection (every request reuses the last
// one's backend) and provisions the tenants; the names get the test's prefix.
func setup(t *testing.T, names ...string) *tenant.Manager {
	t.Helper()
	return setupWith(t, []pool.Option{pool.WithMaxConns(1)}, names...)
}

// setupWith is setup with the pool's options given.
func setupWith(t *testing.T, opts []pool.Option, names ...string) *tenant.Manager {
	t.Helper()
	mgr := tenanttest.New(t, tenant.Config{
		Migrations:  migrations,
		Resolver:    middleware.Header("X-Tenant"),
		PoolOptions: opts,
	})
	for _, name := range names {
		tenanttest.Tenant(t, mgr, name)
	}
	return mgr
}

// serve runs h behind the Middleware for tenant name and returns the response.
func serve(mgr *tenant.Manager, name string, h http.HandlerFunc) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Tenant", name)
	rec := httptest.NewRecorder()
	tenant.Middleware(mgr)(h).ServeHTTP(rec, req)
	return rec
}

// bodies reads the tenant's notes through database/sql, in a request of its own.
func bodies(t *testing.T, mgr *tenant.Manager, name string) []string {
	t.Helper()
	var got []string
	rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.QueryContext(r.Context(), "SELECT body FROM notes ORDER BY id")
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var b string
			require.NoError(t, rows.Scan(&b))
			got = append(got, b)
		}
		require.NoError(t, rows.Err())
	})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return got
}

// write inserts body through database/sql, then answers status.
func write(body string, status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ($1)", body); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(status)
	}
}

// Reads and writes run in the request's tenant and transaction: a write commits with a
// 2xx answer and is rolled back with an error answer, like the session's own.
func TestRequestTransaction(t *testing.T) {
	a, b := "sql_tx_a", "sql_tx_b"
	mgr := setup(t, a, b)

	assert.Equal(t, http.StatusCreated, serve(mgr, a, write("kept", http.StatusCreated)).Code)
	assert.Equal(t, http.StatusInternalServerError, serve(mgr, a, write("undone", http.StatusInternalServerError)).Code)
	rec := serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
		_, err := db.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ('dry run')")
		require.NoError(t, err)
		tenantctx.RollbackOnly(r.Context())
	})
	assert.Equal(t, http.StatusOK, rec.Code)

	assert.Equal(t, []string{a, "kept"}, bodies(t, mgr, a))
	assert.Equal(t, []string{b}, bodies(t, mgr, b), "the other tenant, on the same backend")
}

// A database/sql transaction is a savepoint: its rollback undoes its own writes only,
// its commit keeps them for the request to commit, and the request's failure undoes
// even a committed one.
func TestTransactionIsASavepoint(t *testing.T) {
	a := "sql_sp"
	mgr := setup(t, a)

	rec := serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		_, err := db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('before')")
		require.NoError(t, err)

		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('rolled back')")
		require.NoError(t, err)
		var n int
		require.NoError(t, tx.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(&n))
		assert.Equal(t, 3, n, "the savepoint sees the request's writes and its own")
		require.NoError(t, tx.Rollback())

		tx, err = db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('released')")
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
	})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, []string{a, "before", "released"}, bodies(t, mgr, a))

	rec = serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
		tx, err := db.BeginTx(r.Context(), nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ('committed, then the request failed')")
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		http.Error(w, "failed", http.StatusConflict)
	})
	require.Equal(t, http.StatusConflict, rec.Code)
	assert.Equal(t, []string{a, "before", "released"}, bodies(t, mgr, a))
}

// A transaction cannot choose its own isolation level or mode: the request has them.
func TestTransactionOptionsRefused(t *testing.T) {
	a := "sql_opts"
	mgr := setup(t, a)
	for _, opts := range []*sql.TxOptions{
		{Isolation: sql.LevelSerializable},
		{Isolation: sql.LevelReadCommitted},
		{ReadOnly: true},
	} {
		rec := serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
			_, err := db.BeginTx(r.Context(), opts)
			assert.ErrorIs(t, err, tenantsql.ErrTxOptions, "%+v", opts)
		})
		assert.Equal(t, http.StatusOK, rec.Code)
	}
}

// Outside a request every call fails saying why, and nothing runs: not in the pool's
// default schema, not anywhere.
func TestOutsideARequest(t *testing.T) {
	a := "sql_outside"
	mgr := setup(t, a)
	ctx := context.Background()

	_, err := db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('nowhere')")
	require.ErrorIs(t, err, tenantctx.ErrNoSession)
	assert.Contains(t, err.Error(), "pass the request's context")
	_, err = db.Exec("INSERT INTO notes (body) VALUES ('nowhere')")
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
	_, err = db.QueryContext(ctx, "SELECT 1")
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
	assert.ErrorIs(t, db.QueryRow("SELECT 1").Scan(new(int)), tenantctx.ErrNoSession)
	_, err = db.BeginTx(ctx, nil)
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
	st, err := db.PrepareContext(ctx, "INSERT INTO notes (body) VALUES ($1)")
	require.NoError(t, err, "preparing runs nothing")
	_, err = st.ExecContext(ctx, "nowhere")
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
	require.NoError(t, st.Close())
	assert.NoError(t, db.PingContext(ctx), "there is nothing to reach outside a request")

	assert.Equal(t, []string{a}, bodies(t, mgr, a))
}

// A conflict runs the handler again, and database/sql calls run in the new attempt's
// transaction: the first attempt's write is gone.
func TestConflictRunsAgain(t *testing.T) {
	a := "sql_retry"
	mgr := setup(t, a)
	var attempts int
	rec := serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
		attempts++
		ctx := r.Context()
		_, err := db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", fmt.Sprint("attempt ", attempts))
		require.NoError(t, err)
		if attempts == 1 {
			_, err = db.ExecContext(ctx, "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$")
			require.Error(t, err)
			http.Error(w, "conflict", http.StatusInternalServerError)
		}
	})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, 2, attempts)
	assert.Equal(t, []string{a, "attempt 2"}, bodies(t, mgr, a))
}

// Prepared statements prepare nothing on a connection: each call runs in its own
// context's tenant, whichever tenant the statement was prepared in. The tenants sit
// at different migration versions: the query's columns differ between them.
func TestPreparedStatementFollowsTheContext(t *testing.T) {
	a, b := "sql_prep_a", "sql_prep_b"
	mgr := setup(t, a, b)
	_, err := mgr.Pool().Exec(t.Context(), `ALTER TABLE sql_prep_b.notes ADD COLUMN extra int NOT NULL DEFAULT 7`)
	require.NoError(t, err)

	var st *sql.Stmt
	serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
		st, err = db.PrepareContext(r.Context(), "SELECT * FROM notes ORDER BY id LIMIT 1")
		require.NoError(t, err)
	})
	defer st.Close()
	columns := map[string][]string{}
	for _, name := range []string{a, b, a} {
		rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
			rows, err := st.QueryContext(r.Context())
			require.NoError(t, err)
			defer rows.Close()
			columns[name], err = rows.Columns()
			require.NoError(t, err)
			require.True(t, rows.Next())
			values := make([]any, len(columns[name]))
			for i := range values {
				values[i] = new(any)
			}
			require.NoError(t, rows.Scan(values...))
			assert.Equal(t, name, *(values[1].(*any)), "the row of the context's tenant")
		})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	}
	assert.Equal(t, []string{"id", "body", "tags"}, columns[a])
	assert.Equal(t, []string{"id", "body", "tags", "extra"}, columns[b])
}

// Many requests of two tenants at once share one *sql.DB over two connections: each
// reads its own tenant's rows, exactly.
func TestConcurrentTenants(t *testing.T) {
	a, b := "sql_conc_a", "sql_conc_b"
	mgr := setup(t, a, b)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		name := []string{a, b}[i%2]
		wg.Go(func() {
			rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
				var got string
				if err := db.QueryRowContext(r.Context(), "SELECT body FROM notes WHERE id = 1").Scan(&got); err != nil {
					errs <- err
				} else if got != name {
					errs <- fmt.Errorf("request of %s read %s", name, got)
				}
			})
			if rec.Code != http.StatusOK {
				errs <- errors.New(strings.TrimSpace(rec.Body.String()))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Rows left open keep the connection: the next call fails rather than interleave with
// them, and works once they are closed.
func TestOneCallAtATime(t *testing.T) {
	a := "sql_busy"
	mgr := setup(t, a)
	rec := serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		rows, err := db.QueryContext(ctx, "SELECT g FROM generate_series(1, 1000) g")
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", "while reading")
		assert.ErrorContains(t, err, "conn busy")
		require.NoError(t, rows.Close())
		_, err = db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", "after reading")
		require.NoError(t, err)
	})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, []string{a, "after reading"}, bodies(t, mgr, a))
}
