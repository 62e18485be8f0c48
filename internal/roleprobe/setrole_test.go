package roleprobe

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
)

// The application's prefix under the SET ROLE mechanism: the shared login role app
// enters acme's role for the transaction. What follows it is injected.
const asAcme = "BEGIN; SET LOCAL ROLE {acme}; SET LOCAL search_path TO {acme}; "

// readGlobex returns globex's invoice (42) when the read is allowed.
const readGlobex = "SELECT amount FROM {globex}.invoices"

// A shared login role that is a member of every tenant role, entering one with SET
// LOCAL ROLE: the role holds while nobody undoes it, and anyone running SQL on the
// connection can undo it, because every switch is checked against the session user,
// which may become any tenant.
func TestSetLocalRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.check(t, f.url(t, "app"), []probe{
		{name: "entered", sql: asAcme + "SELECT current_user::text || ' ' || session_user::text", last: "{acme:name} {app:name}"},
		{name: "own rows", sql: asAcme + "SELECT amount FROM invoices", last: "7"},
		{name: "qualified read refused while the role holds", sql: asAcme + readGlobex, code: "42501"},
		// NOINHERIT: the session user itself holds no tenant's privileges...
		{name: "RESET ROLE alone reads nothing", sql: asAcme + "RESET ROLE; " + readGlobex, code: "42501"},
		// ...but may become any tenant it is a member of.
		{name: "RESET ROLE then SET ROLE", sql: asAcme + "RESET ROLE; SET ROLE {globex}; " + readGlobex, last: "42"},
		{name: "SET ROLE from the tenant role", sql: asAcme + "SET ROLE {globex}; " + readGlobex, last: "42"},
		{name: "SET LOCAL ROLE", sql: asAcme + "SET LOCAL ROLE {globex}; " + readGlobex, last: "42"},
		// No stacked statement needed: one injected expression switches the role, and
		// query_to_xml runs the read as the new role, in the same statement.
		{name: "set_config in a single statement", sql: asAcme + "SELECT set_config('role', {globex:lit}, true), " +
			"(xpath('/table/row/amount/text()', query_to_xml('" + readGlobex + "', true, false, '')))[1]::text", last: "42"},
		{name: "SET SESSION AUTHORIZATION is for superusers", sql: asAcme + "SET SESSION AUTHORIZATION {globex}", code: "42501"},
		{name: "SET SESSION AUTHORIZATION DEFAULT resets to the session user",
			sql: asAcme + "SET SESSION AUTHORIZATION DEFAULT; SELECT current_user::text", last: "{app:name}"},
		// SET LOCAL ends with the transaction: the attacker ends it and starts another.
		{name: "ROLLBACK and a new transaction", sql: asAcme + "ROLLBACK; BEGIN; SET LOCAL ROLE {globex}; " + readGlobex, last: "42"},
		{name: "COMMIT and no transaction", sql: asAcme + "COMMIT; SET ROLE {globex}; " + readGlobex, last: "42"},
		{name: "registry", sql: asAcme + "RESET ROLE; SELECT count(*) FROM public.{registry}", code: "42501"},
		// What row-level security would key on is anyone's to set.
		{name: "a custom setting", sql: asAcme + "SELECT set_config('tenant.id', {globex:lit}, true)", last: "{globex:name}"},
	})
}

// PostgreSQL 15 cannot grant a membership that allows inheriting privileges but not
// SET ROLE (16's GRANT ... WITH SET FALSE): the option is a syntax error.
func TestGrantWithSetFalseIsNotInPostgres15(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	conn := connect(t, testdb15(t))
	_, err := exec(t, conn, f.expand("GRANT {globex} TO {owner} WITH SET FALSE"))
	assert.Equal(t, "42601", sqlstate(err))
}

// Attempts at a one-way switch: SECURITY DEFINER helpers that would set the role for
// the caller, and a membership granted and revoked inside the transaction so that the
// session user is a member of no tenant once the role is set.
func TestOneWaySwitch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// enter_* would set the role on app's behalf; grant_me and revoke_me (owned by the
	// superuser) add and remove the session user's membership in a tenant role. A
	// guarded variant wants a secret the application holds and injected SQL does not.
	f.admin(t, `REVOKE {acme}, {globex} FROM {app};
		CREATE SCHEMA {later} AUTHORIZATION {owner};
		CREATE FUNCTION {later}.enter_plpgsql(r text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
			AS $$BEGIN EXECUTE format('SET LOCAL ROLE %I', r); END$$;
		CREATE FUNCTION {later}.enter_set_config(r text) RETURNS text LANGUAGE sql SECURITY DEFINER
			AS $$SELECT set_config('role', r, true)$$;
		CREATE FUNCTION {later}.grant_me(r text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
			AS $$BEGIN EXECUTE format('GRANT %I TO %I', r, session_user); END$$;
		CREATE FUNCTION {later}.revoke_me(r text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
			AS $$BEGIN EXECUTE format('REVOKE %I FROM %I', r, session_user); END$$;
		CREATE FUNCTION {later}.guarded_grant_me(r text, secret text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
			AS $$BEGIN
				IF secret IS DISTINCT FROM 'app-only-secret' THEN
					RAISE insufficient_privilege USING MESSAGE = 'wrong secret';
				END IF;
				EXECUTE format('GRANT %I TO %I', r, session_user);
			END$$;
		GRANT USAGE ON SCHEMA {later} TO PUBLIC;`)
	const enter = "BEGIN; SELECT {later}.grant_me({acme:lit}); SET LOCAL ROLE {acme}; SELECT {later}.revoke_me({acme:lit}); "
	const guarded = "BEGIN; SELECT {later}.guarded_grant_me({acme:lit}, 'app-only-secret'); SET LOCAL ROLE {acme}; " +
		"SELECT {later}.revoke_me({acme:lit}); "
	f.check(t, f.url(t, "app"), []probe{
		{name: "SET ROLE inside SECURITY DEFINER", sql: "BEGIN; SELECT {later}.enter_plpgsql({acme:lit})", code: "42501"},
		{name: "set_config role inside SECURITY DEFINER", sql: "BEGIN; SELECT {later}.enter_set_config({acme:lit})", code: "42501"},
		{name: "entered with the membership gone",
			sql: enter + "SELECT current_user::text || ' ' || pg_has_role(session_user, {acme:lit}, 'MEMBER')::text", last: "{acme:name} false"},
		{name: "RESET ROLE, then back is refused", sql: enter + "RESET ROLE; SET ROLE {acme}", code: "42501"},
		// The helper that let the application in lets the attacker in.
		{name: "RESET ROLE and the helper again", sql: enter + "RESET ROLE; SELECT {later}.grant_me({globex:lit}); SET ROLE {globex}; " + readGlobex, last: "42"},
		{name: "ROLLBACK and the helper again", sql: enter + "ROLLBACK; BEGIN; SELECT {later}.grant_me({globex:lit}); SET ROLE {globex}; " + readGlobex, last: "42"},
		// With a secret the attacker lacks, the switch is one-way...
		{name: "guarded: helper without the secret", sql: guarded + "RESET ROLE; SELECT {later}.guarded_grant_me({globex:lit}, 'guess')", code: "42501"},
		{name: "guarded: ROLLBACK leaves no membership", sql: guarded + "ROLLBACK; SET ROLE {acme}", code: "42501"},
	})

	// A secret sent as SQL text is visible to every session of the same role.
	other := connect(t, f.url(t, "app"))
	_, err := exec(t, other, "SELECT 'app-only-secret'")
	require.NoError(t, err)
	f.check(t, f.url(t, "app"), []probe{{name: "another session's query text",
		sql: fmt.Sprintf("SELECT query FROM pg_stat_activity WHERE pid = %d", other.PgConn().PID()), last: "SELECT 'app-only-secret'"}})

	// ...but the membership is one catalog row per (tenant, session user): two requests
	// of one tenant serialize on it for their whole transaction.
	ctx := context.Background()
	first, second := connect(t, f.url(t, "app")), connect(t, f.url(t, "app"))
	_, err = exec(t, first, f.expand(guarded))
	require.NoError(t, err)
	_, err = exec(t, second, f.expand("SET lock_timeout = '300ms'; "+guarded))
	assert.Equal(t, "55P03", sqlstate(err), "the second request of acme waits for the first to end")
	_, err = first.Exec(ctx, "ROLLBACK")
	require.NoError(t, err)
}

// testdb15 is the package database's URL (the superuser), after checking the server
// is PostgreSQL 15: the tests that depend on the version say so.
func testdb15(t *testing.T) string {
	t.Helper()
	u := testdb.URL(t)
	var v int
	require.NoError(t, connect(t, u).QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int / 10000").Scan(&v))
	if v != 15 {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL %d: CI must run the probes of PostgreSQL 15, whose answers docs/security.md quotes", v)
		}
		t.Skipf("PostgreSQL %d: this probe is about PostgreSQL 15", v)
	}
	return u
}
