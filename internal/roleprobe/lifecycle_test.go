package roleprobe

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
)

// Another tenant's session shows in pg_stat_activity as metadata only, and cannot be
// signalled.
func TestLoginRoleOtherSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	globex := connect(t, f.url(t, "globex"))
	_, err := exec(t, globex, "SELECT 4242")
	require.NoError(t, err)
	pid := globex.PgConn().PID()
	f.check(t, f.url(t, "acme"), []probe{
		{name: "its query is hidden", sql: fmt.Sprintf("SELECT usename::text || ' ' || query FROM pg_stat_activity WHERE pid = %d", pid),
			last: "{globex:name} <insufficient privilege>"},
		{name: "cancel", sql: fmt.Sprintf("SELECT pg_cancel_backend(%d)", pid), code: "42501"},
		{name: "terminate", sql: fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid), code: "42501"},
	})
}

// PUBLIC has TEMPORARY on a new database (TestLoginRole's "temporary table"); revoked,
// a tenant can create no temporary table or view. Not parallel: it changes the
// database every other test uses, and parallel tests wait for the serial ones.
func TestLoginRoleWithoutTemp(t *testing.T) {
	f := newFixture(t)
	const onDB = "DO $$BEGIN EXECUTE format('%s TEMPORARY ON DATABASE %%I %s PUBLIC', current_database()); END$$"
	f.admin(t, fmt.Sprintf(onDB, "REVOKE", "FROM"))
	t.Cleanup(func() { f.admin(t, fmt.Sprintf(onDB, "GRANT", "TO")) })
	f.check(t, f.url(t, "acme"), []probe{
		{name: "temporary table", sql: "CREATE TEMP TABLE x (id int)", code: "42501"},
		{name: "temporary view", sql: "CREATE TEMP VIEW x AS SELECT 1", code: "42501"},
	})
}

// Suspending a tenant: NOLOGIN refuses new sessions, not the open ones, which
// pg_terminate_backend ends.
func TestSuspend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	open := connect(t, f.url(t, "acme"))
	f.admin(t, "ALTER ROLE {acme} NOLOGIN")

	_, err := pgx.Connect(ctx, f.url(t, "acme"))
	assert.Equal(t, "28000", sqlstate(err), "a new session")
	var n int
	require.NoError(t, open.QueryRow(ctx, "SELECT amount FROM "+f.expand("{acme}")+".invoices").Scan(&n), "the open session")
	assert.Equal(t, 7, n)

	f.admin(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {acme:lit}")
	_, err = exec(t, open, "SELECT 1")
	assert.Equal(t, "57P01", sqlstate(err), "the open session, terminated")
}

// Renaming a role (a spare's, at signup) clears an MD5 password, whose hash includes
// the role's name, and keeps a SCRAM one, which does not.
func TestRenameKeepsOnlyScramPasswords(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	admin := connect(t, testdb.URL(t))
	secret := func(role string) *string {
		var s *string
		require.NoError(t, admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", f.names[role]).Scan(&s))
		return s
	}
	for _, enc := range []string{"md5", "scram-sha-256"} {
		t.Run(enc, func(t *testing.T) {
			f.admin(t, fmt.Sprintf("SET password_encryption = '%s'; CREATE ROLE {stranger} LOGIN PASSWORD 'spare'", enc))
			before := secret("stranger")
			require.NotNil(t, before)
			var notices []string
			cfg, err := pgx.ParseConfig(testdb.URL(t))
			require.NoError(t, err)
			cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
			c, err := pgx.ConnectConfig(ctx, cfg)
			require.NoError(t, err)
			defer c.Close(ctx)
			_, err = c.Exec(ctx, f.expand("ALTER ROLE {stranger} RENAME TO {later}"))
			require.NoError(t, err)
			after := secret("later")
			if enc == "md5" {
				assert.Nil(t, after)
				assert.Equal(t, []string{"MD5 password cleared because of role rename"}, notices)
			} else {
				require.NotNil(t, after)
				assert.Equal(t, *before, *after)
				assert.Empty(t, notices)
			}
			f.admin(t, "DROP ROLE {later}")
		})
	}
}

// Dropping a tenant's role: DROP OWNED BY removes what it owns and its privileges in
// the current database (and on databases themselves) only, so a role that also holds
// a privilege inside another database of the cluster cannot be dropped until DROP
// OWNED BY has run there too.
func TestDropRoleNeedsEveryDatabase(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	elsewhere := connect(t, testdb.NewDatabase(t))
	_, err := exec(t, elsewhere, f.expand("CREATE SCHEMA s; GRANT USAGE ON SCHEMA s TO {acme}"))
	require.NoError(t, err)

	admin := connect(t, testdb.URL(t))
	_, err = exec(t, admin, f.expand("DROP ROLE {acme}"))
	assert.Equal(t, "2BP01", sqlstate(err), "privileges in this database")
	_, err = exec(t, admin, f.expand("DROP OWNED BY {acme}; DROP ROLE {acme}"))
	assert.Equal(t, "2BP01", sqlstate(err), "a privilege in the other database")

	// (One simple-protocol string is one transaction: the DROP OWNED above rolled back.)
	_, err = exec(t, elsewhere, f.expand("DROP OWNED BY {acme}"))
	require.NoError(t, err)
	_, err = exec(t, admin, f.expand("DROP OWNED BY {acme}; DROP ROLE {acme}"))
	require.NoError(t, err)
}

// A tenant may give itself a default role it cannot take (TestLoginRole rolls that
// back): it is stored, and its next login only warns and stays itself.
func TestDefaultRoleOnlyWarns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := exec(t, connect(t, f.url(t, "acme")), f.expand("ALTER ROLE {acme} SET role = {globex:lit}"))
	require.NoError(t, err)
	f.check(t, f.url(t, "acme"), []probe{
		{name: "next login", sql: "SELECT current_user::text", last: "{acme:name}", notice: "42501"},
	})
}
