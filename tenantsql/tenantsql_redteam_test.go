package tenantsql_test

// Red-team tests of package tenantsql and the session's handling of
// pgx.QueryResultFormatsByOID. Tests marked "BUG:" fail against the current code and
// show a defect; the others pass and pin a guarantee of docs/database-sql.md.

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenantsql"
)

// A sql.Tx, a *sql.Conn and a request context kept after their request ended reach
// nothing: each call fails with ErrSessionEnded and runs nowhere, not in the request's
// tenant, not in the tenant of the request that now has the backend (pool of one).
func TestRedteamSQLStaleHandlesAfterRequestEnded(t *testing.T) {
	a, b := "rt_stale_a", "rt_stale_b"
	mgr := setup(t, a, b)

	var staleTx *sql.Tx
	var staleCtx context.Context
	rec := serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
		var err error
		staleTx, err = db.BeginTx(r.Context(), nil)
		require.NoError(t, err)
		_, err = staleTx.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ('in a, never released')")
		require.NoError(t, err)
		staleCtx = r.Context()
		// returns with the sql.Tx open: the request commits, the savepoint with it
	})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	rec = serve(mgr, b, func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		_, err := db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('b own')") // b's backend: the same one
		require.NoError(t, err)
		_, err = staleTx.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('stale tx')")
		assert.ErrorIs(t, err, tenantsql.ErrOtherRequest)
		var n int
		err = staleTx.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(&n)
		assert.ErrorIs(t, err, tenantsql.ErrOtherRequest)
		_, err = staleTx.ExecContext(staleCtx, "INSERT INTO notes (body) VALUES ('stale tx, its own context')")
		assert.ErrorIs(t, err, tenantctx.ErrSessionEnded)
		assert.Error(t, staleTx.Commit())
		_, err = db.ExecContext(staleCtx, "INSERT INTO notes (body) VALUES ('stale ctx')")
		assert.ErrorIs(t, err, tenantctx.ErrSessionEnded)
		_, err = db.BeginTx(staleCtx, nil)
		assert.ErrorIs(t, err, tenantctx.ErrSessionEnded)
	})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, []string{a, "in a, never released"}, bodies(t, mgr, a))
	assert.Equal(t, []string{b, "b own"}, bodies(t, mgr, b))
}

// A *sql.Conn taken in one request and kept is stateless: each call runs in the
// tenant of the context it is given.
func TestRedteamSQLConnPinnedAcrossRequests(t *testing.T) {
	a, b := "rt_pin_a", "rt_pin_b"
	mgr := setup(t, a, b)
	var pinned *sql.Conn
	serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
		var err error
		pinned, err = db.Conn(r.Context())
		require.NoError(t, err)
		_, err = pinned.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ('via conn in a')")
		require.NoError(t, err)
	})
	defer pinned.Close()
	rec := serve(mgr, b, func(w http.ResponseWriter, r *http.Request) {
		_, err := pinned.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ('via conn in b')")
		require.NoError(t, err)
		var schema string
		require.NoError(t, pinned.QueryRowContext(r.Context(), "SELECT current_schema()").Scan(&schema))
		assert.Equal(t, b, schema)
	})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, []string{a, "via conn in a"}, bodies(t, mgr, a))
	assert.Equal(t, []string{b, "via conn in b"}, bodies(t, mgr, b))
}

// Found by red-teaming, and fixed: a sql.Tx runs every call in the request that began it, whatever context the
// call is given: a handler of tenant B given (through a cache, a global, a goroutine)
// a sql.Tx of a request of tenant A still in flight writes into A's schema, in A's
// transaction, and B's answer says nothing of it. The docs say "Every call goes to
// tenantctx.Session of the context it is given" and that a call never runs outside
// the tenant of its context; conn.on ignores ctx as soon as a Tx is open on the conn.
// Fix: in conn.on (and BeginTx's savepoint), refuse a call whose context's session is
// not the one the Tx was begun in (compare tenantctx.Session(ctx) with the session
// kept at BeginTx), with an error such as "tenantsql: this transaction belongs to
// another request".
func TestRedteamSQLTxWithAnotherRequestsContext(t *testing.T) {
	a, b := "rt_cross_a", "rt_cross_b"
	mgr := setupWith(t, []pool.Option{pool.WithMaxConns(3)}, a, b)

	var crossErr error
	rec := serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
		txA, err := db.BeginTx(r.Context(), nil)
		require.NoError(t, err)
		_, err = txA.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ('a, in its tx')")
		require.NoError(t, err)
		recB := serve(mgr, b, func(w http.ResponseWriter, r *http.Request) {
			// tenant B's request, with A's sql.Tx and B's own context
			_, crossErr = txA.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ('written by b''s request')")
		})
		require.Equal(t, http.StatusOK, recB.Code)
		require.NoError(t, txA.Commit())
	})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Error(t, crossErr, "a call with tenant B's context must not run in tenant A's transaction")
	assert.Equal(t, []string{a, "a, in its tx"}, bodies(t, mgr, a), "nothing of B's request in A")
}

// A prepared *sql.Stmt is only its text: used with a pool of one connection
// alternately for two tenants whose tables have the same name and different column
// types (int and text), each call encodes its argument and decodes the result for the
// tenant of its context.
func TestRedteamSQLStmtAcrossTenantShapes(t *testing.T) {
	a, b := "rt_shape_a", "rt_shape_b"
	mgr := setup(t, a, b)
	admin := mgr.Pool()
	_, err := admin.Exec(t.Context(), `CREATE TABLE rt_shape_a.shape (v int PRIMARY KEY, w numeric(10,2));
		INSERT INTO rt_shape_a.shape VALUES (42, 1.50);
		CREATE TABLE rt_shape_b.shape (v text PRIMARY KEY, w timestamptz);
		INSERT INTO rt_shape_b.shape VALUES ('forty-two', '2026-01-02 03:04:05+00')`)
	require.NoError(t, err)

	var sel, ins *sql.Stmt
	serve(mgr, b, func(w http.ResponseWriter, r *http.Request) {
		sel, err = db.PrepareContext(r.Context(), "SELECT v, w FROM shape WHERE v = $1")
		require.NoError(t, err)
		ins, err = db.PrepareContext(r.Context(), "INSERT INTO shape (v) VALUES ($1)")
		require.NoError(t, err)
	})
	defer sel.Close()
	defer ins.Close()
	want := map[string][2]any{
		a: {int64(42), "1.50"},
		b: {"forty-two", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Local()},
	}
	arg := map[string]any{a: 42, b: "forty-two"}
	newKey := map[string]any{a: "7", b: "seven"} // "7" must become the int 7 in a
	for _, name := range []string{a, b, a, b, a} {
		rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
			var v, when any
			require.NoError(t, sel.QueryRowContext(r.Context(), arg[name]).Scan(&v, &when))
			assert.Equal(t, want[name], [2]any{v, when}, name)
			_, err := ins.ExecContext(r.Context(), newKey[name])
			require.NoError(t, err)
			tenantctx.RollbackOnly(r.Context())
		})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	}
}

// Result formats by type are per call: on one connection, for one tenant and one
// statement text, a database/sql query (text numeric, binary int) and the session's
// own (pgx's choice, binary numeric) alternate in either order and each decodes its
// values right; neither poisons the shared statement description.
func TestRedteamSQLFormatsDoNotPoison(t *testing.T) {
	for _, order := range [][]string{{"sql", "pgx", "sql", "pgx"}, {"pgx", "sql", "pgx", "sql"}} {
		t.Run(order[0]+" first", func(t *testing.T) {
			name := "rt_fmt_" + order[0]
			mgr := setup(t, name)
			const q = "SELECT 12.50::numeric AS n, 7::int4 AS i, 'b'::text AS t, '\\x0102'::bytea AS by, true AS ok, '2026-01-02'::date AS d, '{1,2}'::int[] AS arr, '6f9619ff-8b86-d011-b42d-00cf4fc964ff'::uuid AS u"
			for _, how := range order {
				rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
					ctx := r.Context()
					if how == "sql" {
						var n, t2, arr, u string
						var i int64
						var by []byte
						var ok bool
						var d time.Time
						require.NoError(t, db.QueryRowContext(ctx, q).Scan(&n, &i, &t2, &by, &ok, &d, &arr, &u))
						assert.Equal(t, []any{"12.50", int64(7), "b", []byte{1, 2}, true, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), "{1,2}", "6f9619ff-8b86-d011-b42d-00cf4fc964ff"},
							[]any{n, i, t2, by, ok, d, arr, u})
						return
					}
					var n pgtype.Numeric
					var i int32
					var t2 string
					var by []byte
					var ok bool
					var d time.Time
					var arr []int32
					var u pgtype.UUID
					rows, err := tenantctx.Session(ctx).Query(ctx, q)
					require.NoError(t, err)
					defer rows.Close()
					require.True(t, rows.Next())
					for i, fd := range rows.FieldDescriptions() {
						if fd.Name != "t" {
							assert.Equal(t, int16(pgx.BinaryFormatCode), fd.Format, "pgx's binary for column %d", i)
						}
					}
					require.NoError(t, rows.Scan(&n, &i, &t2, &by, &ok, &d, &arr, &u))
					f, err := n.Float64Value()
					require.NoError(t, err)
					assert.Equal(t, []any{12.5, int32(7), "b", []byte{1, 2}, true, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), []int32{1, 2}, "6f9619ff-8b86-d011-b42d-00cf4fc964ff"},
						[]any{f.Float64, i, t2, by, ok, d, arr, u.String()})
				})
				require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			}
		})
	}
}

// A batch carries result formats per query: two queries of the same text, one asking
// text for numeric and int4 by type, one not, each get their own formats, whether the
// statement was described in the batch or before it.
func TestRedteamSQLBatchWithFormats(t *testing.T) {
	name := "rt_batchfmt"
	mgr := setup(t, name)
	const q = "SELECT 3.25::numeric, 9::int4"
	text := pgx.QueryResultFormatsByOID{pgtype.NumericOID: pgx.TextFormatCode, pgtype.Int4OID: pgx.TextFormatCode}
	for range 2 { // described in the batch, then known
		rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			b := &pgx.Batch{}
			b.Queue(q, text)
			b.Queue(q)
			b.Queue(q, pgx.QueryResultFormatsByOID{pgtype.Int4OID: pgx.BinaryFormatCode})
			br := tenantctx.Session(ctx).SendBatch(ctx, b)
			var formats [][]int16
			var raw [][]string
			for range 3 {
				rows, err := br.Query()
				require.NoError(t, err)
				require.True(t, rows.Next())
				var f []int16
				for _, fd := range rows.FieldDescriptions() {
					f = append(f, fd.Format)
				}
				formats = append(formats, f)
				var n pgtype.Numeric
				var i int32
				require.NoError(t, rows.Scan(&n, &i))
				v, err := n.Float64Value()
				require.NoError(t, err)
				raw = append(raw, []string{fmt.Sprint(v.Float64), fmt.Sprint(i)})
				rows.Close()
				require.NoError(t, rows.Err())
			}
			require.NoError(t, br.Close())
			assert.Equal(t, [][]int16{{0, 0}, {1, 1}, {0, 1}}, formats)
			assert.Equal(t, [][]string{{"3.25", "9"}, {"3.25", "9"}, {"3.25", "9"}}, raw)
		})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	}
}

// Every exec mode of the pool gives database/sql the same values: the session sends
// formats itself in the modes it pipelines, and hands them to pgx in the others.
func TestRedteamSQLExecModes(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			name := "rt_mode"
			mgr := setupWith(t, []pool.Option{pool.WithMaxConns(1), pool.WithQueryExecMode(mode)}, name)
			when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			for range 2 {
				rec := serve(mgr, name, func(w http.ResponseWriter, r *http.Request) {
					var i, big int64
					var f float64
					var n, u string
					var ok bool
					var ts time.Time
					var by []byte
					require.NoError(t, db.QueryRowContext(r.Context(),
						"SELECT $1::int4, $2::int8, $3::float8, $4::numeric, $5::uuid, $6::bool, $7::timestamptz, $8::bytea",
						-5, int64(1)<<40, 0.25, "1.10", "6f9619ff-8b86-d011-b42d-00cf4fc964ff", true, when, []byte{0, 255}).
						Scan(&i, &big, &f, &n, &u, &ok, &ts, &by))
					assert.Equal(t, []any{int64(-5), int64(1) << 40, 0.25, "1.10", "6f9619ff-8b86-d011-b42d-00cf4fc964ff", true, when, []byte{0, 255}},
						[]any{i, big, f, n, u, ok, ts.UTC(), by})
					_, err := db.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ($1)", "in "+mode.String())
					require.NoError(t, err)
					tenantctx.RollbackOnly(r.Context())
				})
				require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			}
			assert.Equal(t, []string{name}, bodies(t, mgr, name))
		})
	}
}
