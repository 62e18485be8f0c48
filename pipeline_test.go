package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// A statement described on one connection runs on another in the round trip that
// begins the transaction: the second connection parses it there, with the types
// learned inside the same tenant's transaction. Two round trips, the right row.
func TestDescriptionsTravelBetweenConnections(t *testing.T) {
	a := newTenantName("dtc")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	ctx := context.Background()
	_, err := e.admin.Exec(ctx, `UPDATE "`+a+`".counter SET value = 41`)
	require.NoError(t, err)
	var pid uint32
	var value int
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.NoError(t, tenantctx.Session(r.Context()).QueryRow(r.Context(),
			"SELECT pg_backend_pid(), value + 1 FROM counter WHERE id = $1", 1).Scan(&pid, &value))
	}))

	held, err := e.pool.Acquire(ctx) // the first connection stays out of the way
	require.NoError(t, err)
	require.Equal(t, 200, do(h, "GET", "/", nil, "X-Tenant", a).Code) // described on the second
	first := pid
	require.Equal(t, 42, value)

	// Now only the connection that never saw the statement is free.
	other, err := e.pool.Acquire(ctx)
	require.NoError(t, err)
	require.Equal(t, first, other.Conn().PgConn().PID())
	held.Release()
	defer other.Release()
	value = 0
	assert.Equal(t, int64(2), e.roundTrips(func() { assert.Equal(t, 200, do(h, "GET", "/", nil, "X-Tenant", a).Code) }))
	assert.NotEqual(t, first, pid, "ran on the other connection")
	assert.Equal(t, 42, value)
}

// The statement rides behind the begin with no Sync between them: when the begin
// fails (here the tenant's schema was dropped under a cached admission), the server
// skips the statement, so it never runs on the connection's default search_path,
// where a table of the same name waits in public.
func TestFailedBeginSkipsTheStatement(t *testing.T) {
	a := newTenantName("fbs")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	ctx := context.Background()
	_, err := e.admin.Exec(ctx, `CREATE TABLE public.`+a+`_trap (name text)`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = e.admin.Exec(ctx, `DROP TABLE IF EXISTS public.`+a+`_trap`) })
	_, err = e.admin.Exec(ctx, `CREATE TABLE "`+a+`".`+a+`_trap (name text)`)
	require.NoError(t, err)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := tenantctx.Session(r.Context()).Exec(r.Context(), "INSERT INTO "+a+"_trap VALUES ($1)", "x"); err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
	require.Equal(t, 200, do(h, "POST", "/", nil, "X-Tenant", a).Code) // admitted, described
	_, err = e.admin.Exec(ctx, `DROP SCHEMA "`+a+`" CASCADE`)
	require.NoError(t, err)

	assert.Equal(t, 404, do(h, "POST", "/", nil, "X-Tenant", a).Code)
	assert.Zero(t, e.count(t, `SELECT count(*) FROM public.`+a+`_trap`), "nothing ran outside the tenant")
	var path string
	require.NoError(t, e.pool.QueryRow(ctx, "SHOW search_path").Scan(&path))
	assert.Equal(t, `"$user", public`, path, "the connection is as it was")
}

// What a handler does with the session's own statements, on a pool of one, so that
// each check reads the state the previous step left on the same connection: rows read
// to the end without Close free the connection; savepoint commands ride with the next
// statement, a ROLLBACK TO with none after it still runs before COMMIT, and a
// try-insert that fails inside a savepoint leaves the rest to commit.
func TestSessionStatementsEndToEnd(t *testing.T) {
	a := newTenantName("sse")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	e.seedItems(t, 3, a)
	ctx := context.Background()
	_, err := e.admin.Exec(ctx, `CREATE UNIQUE INDEX ON "`+a+`".items (name)`)
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		handler func(ctx context.Context, db tenantctx.DB) error
		check   func(t *testing.T)
	}{
		{"rows read to the end, not closed", func(ctx context.Context, db tenantctx.DB) error {
			rows, err := db.Query(ctx, "SELECT name FROM items WHERE name LIKE $1 ORDER BY id", "row%")
			if err != nil {
				return err
			}
			var names []string
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					return err
				}
				names = append(names, n)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			assert.Equal(t, []string{"row1", "row2", "row3"}, names)
			_, err = db.Exec(ctx, "INSERT INTO items (name) VALUES ($1)", "after-rows")
			return err
		}, func(t *testing.T) { assert.Equal(t, 1, e.items(t, a, "after-rows")) }},
		{"rolled back to a savepoint, nothing after", func(ctx context.Context, db tenantctx.DB) error {
			if _, err := db.Exec(ctx, "INSERT INTO items (name) VALUES ($1)", "kept"); err != nil {
				return err
			}
			sp, err := db.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := sp.Exec(ctx, "INSERT INTO items (name) VALUES ($1)", "undone"); err != nil {
				return err
			}
			return sp.Rollback(ctx)
		}, func(t *testing.T) {
			assert.Equal(t, 1, e.items(t, a, "kept"))
			assert.Zero(t, e.items(t, a, "undone"))
		}},
		{"try-insert of a duplicate", func(ctx context.Context, db tenantctx.DB) error {
			sp, err := db.Begin(ctx)
			if err != nil {
				return err
			}
			_, err = sp.Exec(ctx, "INSERT INTO items (name) VALUES ($1)", "row1")
			if !assert.Error(t, err) || !assert.Equal(t, "23505", pgCode(err)) {
				return nil
			}
			if err := sp.Rollback(ctx); err != nil {
				return err
			}
			var n int
			if err := db.QueryRow(ctx, "SELECT count(*) FROM items WHERE name = $1", "row1").Scan(&n); err != nil {
				return err
			}
			assert.Equal(t, 1, n)
			_, err = db.Exec(ctx, "INSERT INTO items (name) VALUES ($1)", "after-duplicate")
			return err
		}, func(t *testing.T) { assert.Equal(t, 1, e.items(t, a, "after-duplicate")) }},
		{"nested savepoints released", func(ctx context.Context, db tenantctx.DB) error {
			outer, err := db.Begin(ctx)
			if err != nil {
				return err
			}
			inner, err := outer.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := inner.Exec(ctx, "INSERT INTO items (name) VALUES ($1)", "nested"); err != nil {
				return err
			}
			if err := inner.Commit(ctx); err != nil {
				return err
			}
			return outer.Commit(ctx)
		}, func(t *testing.T) { assert.Equal(t, 1, e.items(t, a, "nested")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := tc.handler(r.Context(), tenantctx.Session(r.Context())); err != nil {
					http.Error(w, err.Error(), 500)
				}
			}))
			rec := do(h, "POST", "/", nil, "X-Tenant", a)
			require.Equal(t, 200, rec.Code, rec.Body.String())
			tc.check(t)
			var path string
			require.NoError(t, e.pool.QueryRow(ctx, "SHOW search_path").Scan(&path))
			assert.Equal(t, `"$user", public`, path, "the connection was given back reset")
		})
	}
}

// The connection's tracer hears of the statements the session sends itself, with
// their text, arguments and outcome.
func TestTracerSeesSessionStatements(t *testing.T) {
	a := newTenantName("trc")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	var mu sync.Mutex
	var seen []string
	e.queries.hook.Store(&recordingTracer{fn: func(sql string) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, sql)
	}})
	defer e.queries.hook.Store(nil)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v int
		assert.NoError(t, tenantctx.Session(r.Context()).QueryRow(r.Context(), "SELECT value FROM counter WHERE id = $1", 1).Scan(&v))
	}))
	require.Equal(t, 200, do(h, "GET", "/", nil, "X-Tenant", a).Code)
	mu.Lock()
	defer mu.Unlock()
	assert.True(t, slices.Contains(seen, "SELECT value FROM counter WHERE id = $1"), strings.Join(seen, "\n"))
}

// pgCode is err's SQLSTATE, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// Server-side code that drops every prepared statement (a function that runs
// DEALLOCATE ALL, which the session cannot see in the SQL it sends) takes the
// prepared end with it: nothing commits, the request runs again on a fresh connection
// (which prepares the end after the handler's SQL ran) and its one write is stored
// once.
func TestDeallocatedEndRunsAgain(t *testing.T) {
	a := newTenantName("dea")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	ctx := context.Background()
	_, err := e.admin.Exec(ctx, `CREATE TABLE "`+a+`".once (done bool);
		CREATE FUNCTION "`+a+`".drop_statements() RETURNS void LANGUAGE plpgsql AS $$
		BEGIN
			IF NOT EXISTS (SELECT FROM once) THEN
				INSERT INTO once VALUES (true);
				EXECUTE 'DEALLOCATE ALL';
			END IF;
		END$$`)
	require.NoError(t, err)
	var runs atomic.Int32
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		db := tenantctx.Session(r.Context())
		if _, err := db.Exec(r.Context(), "INSERT INTO items (name) VALUES ($1)", "dealloc"); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if _, err := db.Exec(r.Context(), "SELECT drop_statements()"); err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
	warm := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "SELECT $1::int", 1)
		assert.NoError(t, err)
	}))
	require.Equal(t, 200, do(warm, "POST", "/", nil, "X-Tenant", a).Code) // the end is prepared on the one connection
	rec := do(h, "POST", "/", nil, "X-Tenant", a)
	assert.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Equal(t, 1, e.items(t, a, "dealloc"))
	assert.Equal(t, int32(2), runs.Load(), "the first attempt's end found its statements gone")
}

// Admission forgets a tenant after HitTTL and makes its binding afresh, with no
// descriptions: the connection still has the statements the old binding prepared
// (the same names: same tenant, version and schema), and describing one again must
// not collide with it. (Once, every request failed with "prepared statements are
// lost" a minute into a benchmark.)
func TestFreshBindingOnAConnectionThatHasItsStatements(t *testing.T) {
	a := newTenantName("frb")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader, HitTTL: time.Millisecond}, a)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		var v int
		if err := db.QueryRow(r.Context(), "SELECT value FROM counter WHERE id = $1", 1).Scan(&v); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		var next int
		b := &pgx.Batch{}
		b.Queue("SELECT value + 1 FROM counter WHERE id = $1", 1).QueryRow(func(row pgx.Row) error { return row.Scan(&next) })
		if err := db.SendBatch(r.Context(), b).Close(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = fmt.Fprintf(w, "%s %d %d", tenantctx.Schema(r.Context()), v, next)
	}))
	_, err := e.admin.Exec(context.Background(), `UPDATE "`+a+`".counter SET value = 41`)
	require.NoError(t, err)
	for i := range 3 {
		rec := do(h, "GET", "/", nil, "X-Tenant", a)
		require.Equal(t, 200, rec.Code, "request %d: %s", i, rec.Body)
		assert.Equal(t, a+" 41 42", rec.Body.String(), "request %d", i)
		time.Sleep(5 * time.Millisecond) // the admission expires
	}
}
