package roleprobe

import (
	"testing"
)

// addLaterTables adds to acme, after its role and grants exist, what later migrations
// add: a table with a serial and one with an identity column, created by the schema's
// owner (so the default privileges cover them), and one created by another role, the
// superuser, which they do not cover.
func addLaterTables(t *testing.T, f *fixture) {
	t.Helper()
	f.admin(t, `SET ROLE {owner};
		CREATE TABLE {acme}.{later} (id serial PRIMARY KEY, note text);
		CREATE TABLE {acme}.identities (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
		RESET ROLE;
		CREATE TABLE {acme}.{stranger} (id int);`)
}

// loginProbes are what SQL run as acme's own login role (session_user = acme) can
// and cannot do. They run directly and through PgBouncer.
func loginProbes() []probe {
	const own = "BEGIN; SET LOCAL search_path TO {acme}; "
	return []probe{
		{name: "identity", sql: "SELECT current_user::text || ' ' || session_user::text", last: "{acme:name} {acme:name}"},

		// Its own tables: all DML, sequences through nextval, later tables.
		{name: "own DML", sql: own + "INSERT INTO invoices (amount) VALUES (1); UPDATE invoices SET amount = 2 WHERE amount = 1; " +
			"DELETE FROM invoices WHERE amount = 2; SELECT sum(amount) FROM invoices", last: "7"},
		{name: "nextval", sql: own + "SELECT nextval(pg_get_serial_sequence('invoices', 'id')) > 0", last: "t"},
		{name: "setval needs UPDATE, not granted", sql: own + "SELECT setval(pg_get_serial_sequence('invoices', 'id'), 1000)", code: "42501"},
		{name: "later table with a serial", sql: own + "INSERT INTO {later} (note) VALUES ('x') RETURNING id", last: "1"},
		{name: "later table with an identity", sql: own + "INSERT INTO identities (note) VALUES ('x') RETURNING id", last: "1"},
		{name: "table made by another role than the owner", sql: own + "SELECT count(*) FROM {stranger}", code: "42501"},

		// Another tenant's schema.
		{name: "qualified read", sql: readGlobex, code: "42501"},
		{name: "qualified insert", sql: "INSERT INTO {globex}.invoices (amount) VALUES (1)", code: "42501"},
		{name: "qualified delete", sql: "DELETE FROM {globex}.invoices", code: "42501"},
		// Without USAGE the schema is skipped in the search path: the name is not found.
		{name: "search_path to the other schema", sql: "SET search_path TO {globex}; SELECT amount FROM invoices", code: "42P01"},
		{name: "query_to_xml runs as the caller", sql: "SELECT query_to_xml('" + readGlobex + "', true, false, '')", code: "42501"},
		{name: "regclass lookup", sql: "SELECT '{globex}.invoices'::regclass::oid > 0", code: "42501"},

		// Another identity.
		{name: "SET ROLE", sql: "SET ROLE {globex}", code: "42501"},
		{name: "SET LOCAL ROLE", sql: "BEGIN; SET LOCAL ROLE {globex}", code: "42501"},
		{name: "set_config role", sql: "SELECT set_config('role', {globex:lit}, false)", code: "42501"},
		{name: "SET SESSION AUTHORIZATION", sql: "SET SESSION AUTHORIZATION {globex}", code: "42501"},
		{name: "RESET ROLE and DEFAULT change nothing", sql: "RESET ROLE; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; " +
			"SELECT current_user::text", last: "{acme:name}"},
		{name: "ROLLBACK and a new transaction", sql: own + "ROLLBACK; BEGIN; " + readGlobex, code: "42501"},
		// The tenants group is a role it may become: it holds only the shared grants.
		{name: "SET ROLE to the group", sql: "SET ROLE {tenants}; SELECT name FROM public.{plans}", last: "free"},
		{name: "the group reads no tenant", sql: "SET ROLE {tenants}; " + readGlobex, code: "42501"},

		// Shared tables.
		{name: "registry", sql: "SELECT count(*) FROM public.{registry}", code: "42501"},
		{name: "granted shared table", sql: "SELECT name FROM public.{plans}", last: "free"},
		{name: "write a shared table granted for reading", sql: "UPDATE public.{plans} SET name = 'x'", code: "42501"},

		// DDL, in its own schema and elsewhere.
		{name: "CREATE TABLE in its schema", sql: "CREATE TABLE {acme}.x (id int)", code: "42501"},
		{name: "ALTER TABLE", sql: "ALTER TABLE {acme}.invoices ADD COLUMN x int", code: "42501"},
		{name: "DROP TABLE", sql: "DROP TABLE {acme}.invoices", code: "42501"},
		{name: "TRUNCATE", sql: "TRUNCATE {acme}.invoices", code: "42501"},
		{name: "CREATE INDEX", sql: "CREATE INDEX ON {acme}.invoices (amount)", code: "42501"},
		{name: "COMMENT", sql: "COMMENT ON TABLE {acme}.invoices IS 'x'", code: "42501"},
		{name: "DROP SCHEMA", sql: "DROP SCHEMA {acme} CASCADE", code: "42501"},
		{name: "CREATE SCHEMA", sql: "CREATE SCHEMA x", code: "42501"},
		// PostgreSQL 15: PUBLIC no longer has CREATE on public.
		{name: "CREATE TABLE in public", sql: "CREATE TABLE public.x (id int)", code: "42501"},
		{name: "CREATE FUNCTION in public", sql: "CREATE FUNCTION public.x() RETURNS int LANGUAGE sql AS 'SELECT 1'", code: "42501"},
		{name: "CREATE EXTENSION", sql: "CREATE EXTENSION pgcrypto", code: "42501"},
		{name: "CREATE ROLE", sql: "CREATE ROLE x", code: "42501"},
		// A GRANT by a non-owner without grant options grants nothing, with a warning.
		{name: "GRANT on its own table", sql: "GRANT SELECT ON {acme}.invoices TO {globex}", notice: "01007"},
		{name: "ALTER ROLE another's password", sql: "ALTER ROLE {globex} PASSWORD 'x'", code: "42501"},
		{name: "ALTER ROLE itself NOLOGIN", sql: "ALTER ROLE {acme} NOLOGIN", code: "42501"},
		{name: "ALTER ROLE itself RENAME", sql: "ALTER ROLE {acme} RENAME TO x", code: "0A000"},
		// What a role may do to itself (rolled back here: the connection closes in the
		// transaction): change its password and its session defaults, which locks its
		// own tenant out until a repair. A default role it may not take is kept, with a
		// notice, and only warns at login.
		{name: "ALTER ROLE itself PASSWORD", sql: "BEGIN; ALTER ROLE {acme} PASSWORD 'attacker'; SELECT 'allowed'", last: "allowed"},
		{name: "ALTER ROLE itself SET", sql: "BEGIN; ALTER ROLE {acme} SET statement_timeout = 1; SELECT 'allowed'", last: "allowed"},
		{name: "ALTER ROLE itself SET role", sql: "BEGIN; ALTER ROLE {acme} SET role = {globex:lit}; SELECT 'allowed'",
			last: "allowed", notice: "42501"},

		// The server and the catalog.
		{name: "temporary table", sql: "BEGIN; CREATE TEMP TABLE x (id int); SELECT 'allowed'", last: "allowed"},
		{name: "catalog lists the other tenant's relations", sql: "SELECT count(*) FROM pg_class c JOIN pg_namespace n " +
			"ON n.oid = c.relnamespace WHERE n.nspname = {globex:lit}", last: "3"},
		{name: "catalog lists the other tenant's role", sql: "SELECT count(*) FROM pg_roles WHERE rolname = {globex:lit}", last: "1"},
		{name: "information_schema hides the other tenant's columns",
			sql: "SELECT count(*) FROM information_schema.columns WHERE table_schema = {globex:lit}", last: "0"},
		{name: "password hashes", sql: "SELECT count(*) FROM pg_authid", code: "42501"},
		{name: "server files", sql: "SELECT pg_read_file('postgresql.conf')", code: "42501"},
		{name: "COPY TO PROGRAM", sql: "COPY (SELECT 1) TO PROGRAM 'true'", code: "42501"},
		{name: "large object import", sql: "SELECT lo_import('postgresql.conf')", code: "42501"},
		{name: "advisory locks", sql: "SELECT pg_try_advisory_xact_lock(1)", last: "t"},
	}
}

// A tenant's own login role: session_user is the tenant, so no statement can switch
// to another tenant, and the grants decide the rest.
func TestLoginRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	addLaterTables(t, f)
	f.check(t, f.url(t, "acme"), loginProbes())
}
