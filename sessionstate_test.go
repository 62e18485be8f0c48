package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/tenantctx"
)

// runSQL runs the request's SQL (?sql=, statements separated by "; "): all but the
// last in one Exec (one simple-protocol message), then the last with QueryRow. It
// answers the first column of its first row as text, "ok" for none, "null", or
// "error SQLSTATE" with 422 for an error.
var runSQL = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	db := tenantctx.Session(r.Context())
	statements := strings.Split(r.URL.Query().Get("sql"), "; ")
	var out *string
	var err error
	if len(statements) > 1 {
		_, err = db.Exec(r.Context(), strings.Join(statements[:len(statements)-1], "; "))
	}
	if err == nil {
		err = db.QueryRow(r.Context(), statements[len(statements)-1]).Scan(&out)
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		w.WriteHeader(http.StatusUnprocessableEntity) // and roll back
		_, _ = fmt.Fprint(w, "error "+pgErr.Code)
	case err != nil && err.Error() == "no rows in result set":
		_, _ = fmt.Fprint(w, "ok")
	case err != nil:
		http.Error(w, err.Error(), 500)
	case out == nil:
		_, _ = fmt.Fprint(w, "null")
	default:
		_, _ = fmt.Fprint(w, *out)
	}
})

func sqlRequest(h http.Handler, tenantName, sql string) (int, string) {
	req := newRequest(context.Background(), tenantName)
	q := req.URL.Query()
	q.Set("sql", sql)
	req.URL.RawQuery = q.Encode()
	rec := newRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// leakCase is SQL a request for tenant A runs to leave state on its connection, and
// SQL a request for tenant B then runs on the same backend, with what it must answer.
type leakCase struct{ name, leave, probe, want string }

// leakCases are the session state a request can leave: temporary tables, WITH HOLD
// cursors, advisory locks, LISTEN, SQL PREPARE, session settings, role and session
// authorization (role may use a's schema), sequence state. tz is the server's TimeZone.
func leakCases(b, role, tz string) []leakCase {
	return []leakCase{
		{"temp table named like a tenant table",
			"CREATE TEMP TABLE items AS SELECT * FROM items; SELECT 'ok'",
			"SELECT string_agg(owner, ',') FROM items", b + "," + b},
		{"temp table of the same name in both",
			"CREATE TEMP TABLE IF NOT EXISTS import_rows (owner text); INSERT INTO import_rows VALUES (current_schema()); SELECT 'ok'",
			"CREATE TEMP TABLE IF NOT EXISTS import_rows (owner text); INSERT INTO import_rows VALUES (current_schema()); " +
				"SELECT string_agg(owner, ',') FROM import_rows", b},
		{"WITH HOLD cursor",
			"DECLARE leak CURSOR WITH HOLD FOR SELECT owner FROM items; SELECT 'ok'",
			"FETCH ALL FROM leak", "error 34000"},
		{"session advisory lock",
			"SELECT pg_advisory_lock(4711)::text",
			"SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()", "0"},
		{"LISTEN",
			"LISTEN leak_channel; SELECT 'ok'",
			"SELECT coalesce(string_agg(c, ','), '') FROM pg_listening_channels() c", ""},
		{"SQL PREPARE",
			"PREPARE leak_stmt AS SELECT owner FROM items; SELECT 'ok'",
			"EXECUTE leak_stmt", "error 26000"},
		{"session settings",
			"SET statement_timeout = 4321; SET TIME ZONE 'Asia/Tokyo'; SELECT 'ok'",
			"SELECT current_setting('statement_timeout') || ' ' || current_setting('TimeZone')", "0 " + tz},
		{"role",
			"SET ROLE " + role + "; SELECT 'ok'",
			"SELECT current_user::text", "postgres"},
		{"session authorization",
			"SET SESSION AUTHORIZATION " + role + "; SELECT 'ok'",
			"SELECT session_user::text || ' ' || current_user::text", "postgres postgres"},
		{"sequence state",
			"SELECT nextval(pg_get_serial_sequence('items', 'id'))::text",
			"SELECT lastval()::text", "error 55000"},
	}
}

// leakFixture makes a role that may use tenant a's schema, and reads the server's
// TimeZone, for leakCases.
func leakFixture(t *testing.T, e *env, a string) (role, tz string) {
	t.Helper()
	_, role = testdb.Role(t, testdb.URL(t))
	_, err := e.admin.Exec(context.Background(), `GRANT USAGE ON SCHEMA "`+a+`" TO `+role) // still bound to its tenant
	require.NoError(t, err)
	require.NoError(t, e.admin.QueryRow(context.Background(), "SHOW TimeZone").Scan(&tz))
	return role, tz
}

// checkLeak runs one case: leave for a through ha, probe for b through hb.
func checkLeak(t *testing.T, ha, hb http.Handler, a, b string, tc leakCase) {
	t.Helper()
	code, body := sqlRequest(ha, a, tc.leave)
	require.Equal(t, 200, code, body)
	code, body = sqlRequest(hb, b, tc.probe)
	assert.Equal(t, tc.want, body)
	if strings.HasPrefix(tc.want, "error") {
		assert.Equal(t, 422, code)
	} else {
		assert.Equal(t, 200, code)
	}
}

// Whatever a request leaves on its connection besides the transaction never reaches
// the next request. With a pool of one connection, tenant B's request runs on the
// backend tenant A's request just used.
func TestSessionStateNeverSurvivesARequest(t *testing.T) {
	a, b := newTenantName("ssa"), newTenantName("ssb")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a, b)
	e.seedItems(t, 2, a, b)
	role, tz := leakFixture(t, e, a)
	h := tenant.Middleware(e.mgr)(runSQL)
	for _, tc := range leakCases(b, role, tz) {
		t.Run(tc.name, func(t *testing.T) {
			checkLeak(t, h, h, a, b, tc)
			// Outside the lifecycle, the pool's connection is as it started.
			var path, timeout, user string
			require.NoError(t, e.pool.QueryRow(context.Background(),
				"SELECT current_setting('search_path'), current_setting('statement_timeout'), current_user::text").Scan(&path, &timeout, &user))
			assert.Equal(t, []string{`"$user", public`, "0", "postgres"}, []string{path, timeout, user})
		})
	}
}

// A request's temporary table never shadows its tenant's table of the same name:
// pg_temp is searched last, and reached only when qualified.
func TestTempTablesNeverShadowTenantTables(t *testing.T) {
	a := newTenantName("tmp")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	e.seedItems(t, 2, a)
	h := tenant.Middleware(e.mgr)(runSQL)
	code, body := sqlRequest(h, a, "CREATE TEMP TABLE items (owner text); INSERT INTO pg_temp.items VALUES ('temp'); "+
		"SELECT string_agg(owner, ',') FROM items")
	require.Equal(t, 200, code, body)
	assert.Equal(t, a+","+a, body)
}

// A session-level SET search_path inside a request leaves nothing on the pool's
// connection (and the request that did it fails: its statements no longer ran in its
// tenant's schema).
func TestSessionSearchPathNeverSurvives(t *testing.T) {
	a, b := newTenantName("spa"), newTenantName("spb")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a, b)
	h := tenant.Middleware(e.mgr)(runSQL)

	code, _ := sqlRequest(h, a, "SET search_path TO public; SELECT 'ok'")
	assert.Equal(t, 500, code, "the transaction was unbound from its tenant")
	var outside string
	require.NoError(t, e.pool.QueryRow(context.Background(), "SHOW search_path").Scan(&outside))
	assert.Equal(t, `"$user", public`, outside)
	code, body := sqlRequest(h, b, "SELECT current_setting('search_path')")
	require.Equal(t, 200, code)
	assert.Equal(t, b+", extensions, pg_temp", body)
}
