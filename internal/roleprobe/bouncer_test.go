package roleprobe

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/bouncer"
	"github.com/tenantkit/tenant/internal/testdb"
)

// authSetup makes the role PgBouncer's auth_query runs as, and the function it calls:
// SECURITY DEFINER, so that role needs no access to pg_authid, and returning the
// secrets of this fixture's login roles only (not the superuser's). It returns no row
// for an unknown or NOLOGIN role: a row of NULLs would fail every login ("bouncer
// config error").
const authSetup = `CREATE ROLE {auth} LOGIN PASSWORD 'auth-secret';
	CREATE SCHEMA {auth};
	CREATE FUNCTION {auth}.lookup(u text) RETURNS TABLE (usename text, passwd text)
		LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
		AS $$SELECT rolname::text, rolpassword FROM pg_authid
			WHERE rolname = u AND rolcanlogin AND rolname LIKE {prefix:lit}$$;
	REVOKE ALL ON FUNCTION {auth}.lookup(text) FROM PUBLIC;
	GRANT USAGE ON SCHEMA {auth} TO {auth};
	GRANT EXECUTE ON FUNCTION {auth}.lookup(text) TO {auth};`

// viaBouncer starts PgBouncer in transaction mode in front of the package database,
// authenticating every client's own role with SCRAM through auth_query, with at most
// maxDB server connections in all, and returns it.
func viaBouncer(t *testing.T, f *fixture, maxDB int) *bouncer.Bouncer {
	t.Helper()
	return viaBouncerQuery(t, f, maxDB, "SELECT usename, passwd FROM {auth}.lookup($1)")
}

// viaBouncerQuery is viaBouncer with another auth_query.
func viaBouncerQuery(t *testing.T, f *fixture, maxDB int, authQuery string) *bouncer.Bouncer {
	t.Helper()
	f.admin(t, authSetup)
	return bouncer.ForTest(t, testdb.URL(t), bouncer.Options{
		Mode: "transaction", PoolSize: 2, AuthType: "scram-sha-256",
		AuthUser: f.names["auth"], AuthPassword: "auth-secret",
		AuthQuery: f.expand(authQuery),
		Settings: []string{
			fmt.Sprintf("max_db_connections = %d", maxDB),
			"admin_users = " + f.names["auth"],
			// Each probe starts from a clean session, as the library's reset gives.
			"server_reset_query = DISCARD ALL", "server_reset_query_always = 1",
			"query_wait_timeout = 1",
		},
	})
}

// bouncerURL logs in through b as role with password.
func bouncerURL(t *testing.T, f *fixture, b *bouncer.Bouncer, role, password string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(testdb.URL(t))
	require.NoError(t, err)
	u := url.URL{Scheme: "postgres", User: url.UserPassword(f.names[role], password),
		Host: fmt.Sprintf("%s:%d", b.Host, b.Port), Path: "/" + cfg.Database,
		// PgBouncer 1.18 keeps no prepared statement across transactions.
		RawQuery: "sslmode=disable&default_query_exec_mode=exec"}
	if role == "console" {
		u.User, u.Path = url.UserPassword(f.names["auth"], password), "/pgbouncer"
	}
	return u.String()
}

// The tenant login role's guarantees hold through PgBouncer in transaction mode, with
// no tenant in auth_file: PgBouncer checks each tenant's SCRAM secret from auth_query.
func TestLoginRoleBehindPgBouncer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	addLaterTables(t, f)
	b := viaBouncer(t, f, 4)
	f.check(t, bouncerURL(t, f, b, "acme", password(f.names["acme"])), loginProbes())

	ctx := context.Background()
	for name, role := range map[string]string{"wrong password": "acme", "NOLOGIN role": "tenants", "unknown role": "nobody"} {
		_, err := pgx.Connect(ctx, bouncerURL(t, f, b, role, "guess"))
		assert.Equal(t, "08P01", sqlstate(err), name)
	}
	// The lookup function is for PgBouncer's role only.
	f.check(t, f.url(t, "acme"), []probe{{name: "secrets", sql: "SELECT count(*) FROM {auth}.lookup({globex:lit})", code: "42501"}})
}

// PgBouncer keeps one pool per (database, user). With max_db_connections, a pool that
// needs a server connection when the database has its maximum closes the most idle
// one of another pool ("evicted") instead of waiting: a bounded warm set across
// tenants, LRU. The auth_query connection counts too.
func TestPgBouncerEvictsAcrossTenantPools(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := viaBouncer(t, f, 2)
	ctx := context.Background()
	console := connect(t, bouncerURL(t, f, b, "console", "auth-secret"))
	servers := func() int {
		results, err := console.PgConn().Exec(ctx, "SHOW SERVERS").ReadAll()
		require.NoError(t, err)
		return len(results[0].Rows)
	}
	clients := map[string]*pgx.Conn{}
	for _, tenant := range []string{"acme", "globex", "acme", "globex", "acme"} {
		if clients[tenant] == nil {
			clients[tenant] = connect(t, bouncerURL(t, f, b, tenant, password(f.names[tenant])))
		}
		var who string
		require.NoError(t, clients[tenant].QueryRow(ctx, "SELECT current_user").Scan(&who))
		assert.Equal(t, f.names[tenant], who)
		assert.LessOrEqual(t, servers(), 2)
	}
	assert.Contains(t, b.Log(), "closing because: evicted")
}

// Suspending a tenant behind PgBouncer: NOLOGIN plus terminating its backends. Its
// client connections to PgBouncer stay open, but PgBouncer cannot log in for them
// again (the client waits, then fails), and a new client login finds no secret.
func TestSuspendBehindPgBouncer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := viaBouncer(t, f, 4)
	ctx := context.Background()
	acme := connect(t, bouncerURL(t, f, b, "acme", password(f.names["acme"])))
	_, err := exec(t, acme, "SELECT 1")
	require.NoError(t, err)

	f.admin(t, "ALTER ROLE {acme} NOLOGIN; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {acme:lit}")
	// Until PgBouncer reads the closed socket, it may hand the dead server connection
	// on, and the client gets the server's 57P01: wait until it has dropped it.
	console := connect(t, bouncerURL(t, f, b, "console", "auth-secret"))
	require.Eventually(t, func() bool {
		results, err := console.PgConn().Exec(ctx, "SHOW SERVERS").ReadAll()
		require.NoError(t, err)
		return !slices.ContainsFunc(results[0].Rows, func(row [][]byte) bool {
			return slices.ContainsFunc(row, func(v []byte) bool { return string(v) == f.names["acme"] })
		})
	}, 5*time.Second, 10*time.Millisecond)
	_, err = exec(t, acme, "SELECT 1")
	// PgBouncer retries the login and fails the waiting client at query_wait_timeout.
	assert.Equal(t, "08P01", sqlstate(err), "the open client connection")
	assert.ErrorContains(t, err, "query_wait_timeout")
	_, err = pgx.Connect(ctx, bouncerURL(t, f, b, "acme", password(f.names["acme"])))
	assert.Equal(t, "08P01", sqlstate(err), "a new login")
}

// A spare's role renamed at signup keeps its SCRAM secret: PgBouncer logs it in under
// the new name with the spare's password.
func TestRenamedRoleLogsInBehindPgBouncer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.admin(t, "SET password_encryption = 'scram-sha-256'; CREATE ROLE {stranger} LOGIN PASSWORD 'spare'; ALTER ROLE {stranger} RENAME TO {later}")
	b := viaBouncer(t, f, 4)
	conn := connect(t, bouncerURL(t, f, b, "later", "spare"))
	var who string
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT current_user").Scan(&who))
	assert.Equal(t, f.names["later"], who)
}

// A lookup function that answers an unknown role with a row of NULLs (a function with
// OUT parameters returning a record) makes PgBouncer 1.18 fail that login as a
// configuration error; the roles it knows still log in.
func TestAuthQueryNullRow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.admin(t, `CREATE SCHEMA {later};
		CREATE FUNCTION {later}.lookup(u text, OUT usename text, OUT passwd text) RETURNS record
			LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
			AS $$SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname = u AND rolname LIKE {prefix:lit}$$;
		GRANT USAGE ON SCHEMA {later} TO PUBLIC;`)
	b := viaBouncerQuery(t, f, 4, "SELECT usename, passwd FROM {later}.lookup($1)")
	ctx := context.Background()
	_, err := pgx.Connect(ctx, bouncerURL(t, f, b, "nobody", "guess"))
	assert.ErrorContains(t, err, "bouncer config error")
	assert.Contains(t, b.Log(), "auth_query response contained null user name")
	conn := connect(t, bouncerURL(t, f, b, "acme", password(f.names["acme"])))
	var who string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_user").Scan(&who))
	assert.Equal(t, f.names["acme"], who)
}
