package tenantsql_test

// Red-team tests of package tenantsql and the session's handling of
// pgx.QueryResultFormatsByOID. Tests marked "BUG:" fail against the current code and
// show a defect; the others pass and pin a guarantee of docs/database-sql.md.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenantsql"
	"github.com/tenantkit/tenant/tenanttest"
)

// Found by red-teaming, and fixed: rows read after their session ended give their first row as all NULLs, with no
// error: tenantsql reads the first row before QueryContext returns, and once the
// session ended observedRows.RawValues returns nil, so rows.Next fills nothing and
// reports a row. A sql.NullString scans as NULL, an `any` as nil: wrong data, silently,
// where the session's own rows report false and ErrSessionEnded (observe.go). (Rows
// kept past the request: handed to a goroutine, or a streaming helper that outlives
// the handler.) Fix: in rows.Next, when RawValues returns nil (or fewer values than
// columns) for a row that has columns, return the rows' error (Err), else
// tenantctx.ErrSessionEnded; or check the session at each Next.
func TestRedteamSQLRowsAfterSessionEnded(t *testing.T) {
	name := "rt_rows_gone"
	mgr := setup(t, name)
	var rows *sql.Rows
	err := mgr.Run(t.Context(), name, func(ctx context.Context) error {
		var err error
		rows, err = db.QueryContext(ctx, "SELECT body FROM notes")
		return err
	})
	t.Logf("Run with rows left open: %v", err)
	require.NotNil(t, rows)
	defer rows.Close()
	if rows.Next() {
		var body sql.NullString
		scanErr := rows.Scan(&body)
		assert.Fail(t, "a row after the session ended", "scanned %+v (error %v): the row was %q", body, scanErr, name)
	}
	assert.ErrorIs(t, rows.Err(), tenantctx.ErrSessionEnded)
}

// Found by red-teaming, and fixed: cancelling a call's own context while its rows are open (a per-query timeout,
// context.WithTimeout(r.Context(), ...)) makes the lifecycle run the whole handler
// again and again, as if the database connection had died, until RetryTimeout (5 s)
// is spent, then answer 503 "service unavailable" (measured: 30 to 70 attempts, each
// closing a pooled connection). pgx closes the connection under the cancelled read
// (database/sql closes the rows itself when that context ends), the handler's next
// call fails with "conn closed", and session.note counts that as a lost connection:
// it only excuses an error that is itself context.Canceled. The handler's side effects
// (mails, calls to other services) repeat dozens of times. The docs say "Not when the
// handler's own deadline closed it: the handler's answer stands". The same happens
// through the pgx session (tenantctx.Session(ctx).Query with a cancelled ctx); it is
// the session's, reached naturally through database/sql. Nothing is committed
// (checked below).
// Fix: when a call ends with a context error and the connection is closed after it,
// record that the handler's context closed it and count it neither as connLost nor
// as a transaction the handler ended; answer once (500, or the handler's own error).
func TestRedteamSQLCancelMidRowsRunsHandlerAgain(t *testing.T) {
	name := "rt_cancel"
	mgr := tenanttest.New(t, tenant.Config{
		Migrations:   migrations,
		Resolver:     middleware.Header("X-Tenant"),
		PoolOptions:  []pool.Option{pool.WithMaxConns(1)},
		RetryTimeout: 500 * time.Millisecond, // the default 5 s would show the same, slower
	})
	tenanttest.Tenant(t, mgr, name)
	attempts := 0
	rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
		attempts++
		_, err := db.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ($1)", "before")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(r.Context())
		rows, err := db.QueryContext(ctx, "SELECT g FROM generate_series(1, 200000) g")
		require.NoError(t, err)
		require.True(t, rows.Next())
		cancel() // the query's own deadline, say
		for rows.Next() {
		}
		assert.ErrorIs(t, rows.Err(), context.Canceled)
		_ = rows.Close()
		if _, err := db.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ($1)", "after"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	t.Logf("answer %d %q after %d attempts", rec.Code, rec.Body.String(), attempts)
	assert.Equal(t, []string{name}, bodies(t, mgr, name), "nothing of a request whose transaction was lost")
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.Equal(t, 1, attempts, "the handler's own cancellation is not a lost connection: no rerun")
}

// badOnce is a driver.Valuer that fails its first encoding with driver.ErrBadConn,
// which makes database/sql run the call again.
type badOnce struct{ calls *atomic.Int32 }

func (v badOnce) Value() (driver.Value, error) {
	if v.calls.Add(1) == 1 {
		return nil, driver.ErrBadConn
	}
	return "valuer", nil
}

// An argument whose encoding fails with driver.ErrBadConn makes database/sql retry the
// call, and the statement runs exactly once: encoding happens before anything is sent.
// Odd arguments (sql.Out, sql.Named) are refused, run nothing, and leave the request's
// transaction usable.
func TestRedteamSQLOddArguments(t *testing.T) {
	name := "rt_args"
	mgr := setup(t, name)
	for _, described := range []bool{false, true} { // the statement's first use, then known
		var calls atomic.Int32
		rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			_, err := db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", badOnce{&calls})
			t.Logf("described %v: %d encodings, error %v", described, calls.Load(), err)
			require.NoError(t, err)

			var out string
			_, err = db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", sql.Out{Dest: &out})
			assert.Error(t, err)
			_, err = db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", sql.Out{Dest: &out, In: true})
			assert.Error(t, err)
			_, err = db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", sql.Named("body", "named"))
			assert.Error(t, err)
			_, err = db.QueryContext(ctx, "SELECT $1::text", sql.Named("x", "named"))
			assert.Error(t, err)
			_, err = db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", "after")
			require.NoError(t, err, "the transaction is not aborted by refused arguments")
			w.WriteHeader(http.StatusCreated)
		})
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		assert.Equal(t, int32(2), calls.Load(), "one failed encoding, one that ran")
	}
	assert.Equal(t, []string{name, "valuer", "after", "valuer", "after"}, bodies(t, mgr, name))
}

// A conflict inside a database/sql transaction runs the handler again even when the
// handler rolled the transaction back and answered 200; a sql.Tx kept from the first
// attempt reaches nothing in the second. Only the second attempt's writes are stored.
func TestRedteamSQLRetryWithTx(t *testing.T) {
	name := "rt_retry_tx"
	mgr := setup(t, name)
	var attempts int
	var first *sql.Tx
	var staleErr error
	rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
		attempts++
		ctx := r.Context()
		_, err := db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", fmt.Sprint("outside tx ", attempts))
		require.NoError(t, err)
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", fmt.Sprint("in tx ", attempts))
		require.NoError(t, err)
		if attempts == 1 {
			first = tx
			_, err = tx.ExecContext(ctx, "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$")
			require.Error(t, err)
			return // the sql.Tx is left open: the handler "forgot" it
		}
		_, staleErr = first.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('via the first attempt''s tx')")
		require.NoError(t, tx.Commit())
	})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, 2, attempts)
	assert.ErrorIs(t, staleErr, tenantsql.ErrOtherRequest, "the first attempt's transaction, with the second's context")
	assert.Equal(t, []string{name, "outside tx 2", "in tx 2"}, bodies(t, mgr, name))
}

// Found by red-teaming, and fixed: two database/sql transactions open at once in one request (database/sql allows
// it: each has a connection of its own, and commits independently) become nested
// savepoints. Committing the inner one and rolling back the outer one silently undoes
// the inner one's committed write: the request answers 200 and the row that
// tx2.Commit() kept is gone (an audit row written in its own transaction while the
// main one is open and then rolled back, say). The docs only say "BeginTx is a
// savepoint of the request's transaction".
// Fix: refuse a BeginTx while another sql.Tx of the same request is open (the session
// knows its open savepoints), with an error saying database/sql transactions in a
// request nest; or at least document that they nest and what Commit then means.
func TestRedteamSQLInterleavedTransactions(t *testing.T) {
	name := "rt_interleave"
	mgr := setup(t, name)
	var beginErr error
	rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		main, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = main.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('main, rolled back')")
		require.NoError(t, err)
		audit, err := db.BeginTx(ctx, nil)
		if beginErr = err; err != nil { // refused: the fix
			require.ErrorIs(t, err, tenantsql.ErrTxOpen)
			require.NoError(t, main.Rollback())
			audit, err = db.BeginTx(ctx, nil) // once the first ended, a second may begin
			require.NoError(t, err)
			require.NoError(t, audit.Rollback())
			return
		}
		_, err = audit.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('audit, committed')")
		require.NoError(t, err)
		require.NoError(t, audit.Commit())
		require.NoError(t, main.Rollback())
	})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	if beginErr != nil {
		assert.Equal(t, []string{name}, bodies(t, mgr, name))
		return
	}
	assert.Equal(t, []string{name, "audit, committed"}, bodies(t, mgr, name),
		"a transaction that committed keeps its write when another one rolls back")
}

// A statement that fails after its first rows (division by zero at row 3) aborts the
// request's transaction even when the handler ignores the error: the request answers
// 500 and stores nothing.
func TestRedteamSQLErrorMidRowsFailsRequest(t *testing.T) {
	name := "rt_midrows"
	mgr := setup(t, name)
	for _, readToEnd := range []bool{true, false} {
		rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			_, err := db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('lost')")
			require.NoError(t, err)
			rows, err := db.QueryContext(ctx, "SELECT 1 / (3 - g) FROM generate_series(1, 5) g")
			require.NoError(t, err)
			if readToEnd {
				for rows.Next() {
				}
				assert.ErrorContains(t, rows.Err(), "division by zero")
			} else {
				require.True(t, rows.Next())
			}
			_ = rows.Close()
			w.WriteHeader(http.StatusCreated) // ignoring the error
		})
		assert.Equal(t, http.StatusInternalServerError, rec.Code, "read to the end: %v", readToEnd)
	}
	assert.Equal(t, []string{name}, bodies(t, mgr, name))
}

// Many concurrent requests of three tenants through one *sql.DB, on a pool of two
// connections, with a *sql.Stmt prepared once and savepoints committed and rolled
// back: each tenant ends with exactly its own committed rows (run with -race).
func TestRedteamSQLConcurrentTxAndStmt(t *testing.T) {
	names := []string{"rt_conc_a", "rt_conc_b", "rt_conc_c"}
	mgr := setupWith(t, []pool.Option{pool.WithMaxConns(2)}, names...)
	ins, err := db.Prepare("INSERT INTO notes (body) VALUES ($1 || ':' || current_schema())")
	require.NoError(t, err)
	defer ins.Close()
	var wg sync.WaitGroup
	const perTenant = 12
	for i := range perTenant * len(names) {
		name := names[i%len(names)]
		wg.Go(func() {
			rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				fail := func(err error) bool { // a conflict: the lifecycle runs the handler again
					if err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
					}
					return err != nil
				}
				tx, err := db.BeginTx(ctx, nil)
				if fail(err) {
					return
				}
				if _, err = tx.StmtContext(ctx, ins).ExecContext(ctx, fmt.Sprint("kept ", i)); fail(err) {
					return
				}
				if fail(tx.Commit()) {
					return
				}
				if tx, err = db.BeginTx(ctx, nil); fail(err) {
					return
				}
				if _, err = tx.StmtContext(ctx, ins).ExecContext(ctx, fmt.Sprint("undone ", i)); fail(err) {
					return
				}
				if fail(tx.Rollback()) {
					return
				}
				_, err = ins.ExecContext(ctx, fmt.Sprint("plain ", i))
				fail(err)
			})
			assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		})
	}
	wg.Wait()
	for j, name := range names {
		got := bodies(t, mgr, name)
		var want []string
		for i := j; i < perTenant*len(names); i += len(names) {
			want = append(want, fmt.Sprint("kept ", i, ":", name), fmt.Sprint("plain ", i, ":", name))
		}
		sort.Strings(want)
		rest := append([]string(nil), got[1:]...)
		sort.Strings(rest)
		assert.Equal(t, name, got[0])
		assert.Equal(t, want, rest, name)
	}
}

// A savepoint recovers from an expected error (a duplicate key): rolled back, the
// request goes on and commits. A sql.Tx whose BeginTx context is cancelled is rolled
// back (ROLLBACK TO, queued) by the next statement outside it, or by database/sql,
// whichever comes first: its write is undone, the request's later writes commit. (It
// failed now and then while only database/sql's late rollback did it, after "after".)
func TestRedteamSQLSavepointRecovery(t *testing.T) {
	name := "rt_recover"
	mgr := setup(t, name)
	rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES (1, 'duplicate')")
		require.ErrorContains(t, err, "23505")
		require.NoError(t, tx.Rollback())

		txCtx, cancel := context.WithCancel(ctx)
		tx, err = db.BeginTx(txCtx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(txCtx, "INSERT INTO notes (body) VALUES ('cancelled tx')")
		require.NoError(t, err)
		cancel()
		require.Eventually(t, func() bool { return errors.Is(tx.Commit(), sql.ErrTxDone) }, time.Second, 5*time.Millisecond)

		_, err = db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", "after")
		require.NoError(t, err)
		w.WriteHeader(http.StatusCreated)
	})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	assert.Equal(t, []string{name, "after"}, bodies(t, mgr, name))
}

// A statement outside the request's open database/sql transaction would run inside its
// savepoint, and the transaction's rollback would undo it although it succeeded: it
// fails with ErrTxOpen instead, and changes nothing. Once the transaction's context is
// cancelled, the next statement outside it rolls it back first (database/sql does so
// too, but later, from a goroutine of its own: its ROLLBACK TO could otherwise land
// after that statement and undo it).
func TestRedteamSQLStatementOutsideAnOpenTx(t *testing.T) {
	name := "rt_outside"
	mgr := setup(t, name)
	rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('in tx')")
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('outside')")
		require.ErrorIs(t, err, tenantsql.ErrTxOpen)
		var n int
		require.ErrorIs(t, db.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(&n), tenantsql.ErrTxOpen)
		require.NoError(t, tx.Rollback())

		for i := range 20 { // the rollback by cancel, each time at once
			txCtx, cancel := context.WithCancel(ctx)
			tx, err = db.BeginTx(txCtx, nil)
			require.NoError(t, err)
			_, err = tx.ExecContext(txCtx, "INSERT INTO notes (body) VALUES ('cancelled')")
			require.NoError(t, err)
			cancel()
			_, err = db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ($1)", fmt.Sprint("after ", i))
			require.NoError(t, err)
		}
		w.WriteHeader(http.StatusCreated)
	})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	want := []string{name}
	for i := range 20 {
		want = append(want, fmt.Sprint("after ", i))
	}
	got := bodies(t, mgr, name)
	sort.Strings(got[1:])
	sort.Strings(want[1:])
	assert.Equal(t, want, got)
}

// pgx's own per-query options given as database/sql arguments (an exec mode first)
// send the statement through pgx on the request's connection, under the tenant's key:
// on a pool of one connection, two tenants whose tables differ (int, text) each get
// their own statement, never the other's cached one.
func TestRedteamSQLPgxOptionsAsArguments(t *testing.T) {
	a, b := "rt_opt_a", "rt_opt_b"
	mgr := setup(t, a, b)
	_, err := mgr.Pool().Exec(t.Context(), `CREATE TABLE rt_opt_a.shape (v int); CREATE TABLE rt_opt_b.shape (v text)`)
	require.NoError(t, err)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeSimpleProtocol} {
		for _, name := range []string{a, b, a, b} {
			rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
				_, err := db.ExecContext(r.Context(), "INSERT INTO shape (v) VALUES ($1)", mode, "0012")
				require.NoError(t, err)
			})
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		}
	}
	var ints []int
	var texts []string
	require.NoError(t, mgr.Pool().QueryRow(t.Context(), `SELECT array_agg(v) FROM rt_opt_a.shape`).Scan(&ints))
	require.NoError(t, mgr.Pool().QueryRow(t.Context(), `SELECT array_agg(v) FROM rt_opt_b.shape`).Scan(&texts))
	assert.Equal(t, []int{12, 12, 12, 12, 12, 12}, ints)
	assert.Equal(t, []string{"0012", "0012", "0012", "0012", "0012", "0012"}, texts)
}
