package tenant_test

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/schema"
)

// roleSecret is the tests' secret for tenant roles' passwords.
var roleSecret = []byte("a test secret of at least 32 bytes, never a real one")

// rolesEnv is a Manager with per-tenant login roles (two role connections, on a pool
// of two for the rest) and the tenants, dropped with their roles after the test, and
// the database's group role too (roles are cluster-wide).
func rolesEnv(t *testing.T, cfg tenant.Config, tenants ...string) *env {
	t.Helper()
	if cfg.Roles == nil {
		cfg.Roles = &schema.Roles{Secrets: [][]byte{roleSecret}}
	}
	if cfg.RoleConns == 0 {
		cfg.RoleConns = 2
	}
	cfg.Resolver = byHeader
	e := newEnv(t, 2, cfg, tenants...)
	t.Cleanup(func() { dropRoles(t, e) })
	for _, name := range tenants {
		t.Cleanup(func() { _ = e.mgr.Drop(context.Background(), name) })
	}
	return e
}

// dropRoles drops what tenant roles a test left: those of tenants it did not drop,
// and the database's group.
func dropRoles(t *testing.T, e *env) { dropTenantRoles(t, e.admin) }

// dropTenantRoles drops the tenant roles of db's database, with their grants.
func dropTenantRoles(t *testing.T, db *pgxpool.Pool) {
	_, err := db.Exec(context.Background(), `DO $$ DECLARE r text; BEGIN
		FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'tenant\_' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '\_%' LOOP
			PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = r;
			EXECUTE format('DROP OWNED BY %I', r);
			EXECUTE format('DROP ROLE %I', r);
		END LOOP; END $$`)
	assert.NoError(t, err)
}

// roleOf is the login role of tenant name.
func roleOf(t *testing.T, e *env, name string) string {
	t.Helper()
	tn, err := e.mgr.Provisioner().Lookup(context.Background(), name)
	require.NoError(t, err)
	role, _, ok, err := e.mgr.Provisioner().Role(context.Background(), tn)
	require.NoError(t, err)
	require.True(t, ok)
	return role
}

// inRequest runs sql (several statements allowed, as an injection would) in a request
// of tenant name, then reads one value with read (when not empty), and returns the
// SQLSTATE of the first failure ("" when none) and the value read: inRequestCtx's,
// without a context of its own.
func inRequest(t *testing.T, e *env, name, sql, read string) (code, value string) {
	t.Helper()
	_, code, value = inRequestCtx(t, context.Background(), e, name, sql, read)
	return code, value
}

// refusal is an injection on tenant a's connection and what it must come to: the
// SQLSTATE of the refusal ("" when allowed) and the value read.
type refusal struct{ name, sql, read, code, value string }

// refusals are what injected SQL on tenant a's connection can no longer do, each
// against the exact SQLSTATE of the refusal, and what a's own work still does.
func refusals(a, b, roleA, roleB string) []refusal {
	qb := `"` + b + `"`
	return []refusal{
		{"logged in as the tenant's role", "SELECT 1", "SELECT session_user || ' ' || current_user", "", roleA + " " + roleA},
		{"own rows", "INSERT INTO items (name) VALUES ('mine')", "SELECT owner || '/' || count(*) FROM items GROUP BY owner", "", a + "/1"},
		{"own update, delete, sequence", "UPDATE items SET name = 'x'; DELETE FROM items; SELECT nextval('items_id_seq')", "SELECT count(*)::text FROM items", "", "0"},
		{"another tenant's table, qualified", "SELECT 1", "SELECT count(*)::text FROM " + qb + ".items", "42501", ""},
		{"another tenant's table, written", "INSERT INTO " + qb + ".items (name) VALUES ('evil')", "", "42501", ""},
		{"another tenant's schema on the path", "SET LOCAL search_path TO " + qb, "SELECT count(*)::text FROM items", "42P01", ""},
		{"inside an expression", "SELECT 1", "SELECT query_to_xml('SELECT * FROM " + b + ".items', true, false, '')::text", "42501", ""},
		{"SET ROLE", "SET ROLE " + roleB, "", "42501", ""},
		{"set_config('role')", "SELECT set_config('role', '" + roleB + "', true)", "", "42501", ""},
		{"SET SESSION AUTHORIZATION", "SET SESSION AUTHORIZATION " + roleB, "", "42501", ""},
		{"RESET ROLE, then read", "RESET ROLE; RESET SESSION AUTHORIZATION", "SELECT count(*)::text FROM " + qb + ".items", "42501", ""},
		{"ROLLBACK; BEGIN, then read", "ROLLBACK; BEGIN", "SELECT count(*)::text FROM " + qb + ".items", "42501", ""},
		{"the registry", "SELECT 1", "SELECT count(*)::text FROM tenant_registry.tenants", "42501", ""},
		{"CREATE TABLE", "CREATE TABLE evil (x int)", "", "42501", ""},
		{"DROP TABLE", "DROP TABLE items", "", "42501", ""},
		{"ALTER TABLE", "ALTER TABLE items ADD COLUMN evil int", "", "42501", ""},
		{"its migration records", "DELETE FROM tenant_migrations", "", "42501", ""},
		{"CREATE SCHEMA", "CREATE SCHEMA evil", "", "42501", ""},
	}
}

// checkRefusals runs every refusal in requests of tenant a.
func checkRefusals(t *testing.T, e *env, a, b, roleA, roleB string) {
	t.Helper()
	for _, tc := range refusals(a, b, roleA, roleB) {
		t.Run(tc.name, func(t *testing.T) {
			code, value := inRequest(t, e, a, tc.sql, tc.read)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.value, value)
		})
	}
	assert.Equal(t, 0, e.count(t, `SELECT count(*) FROM "`+b+`".items`), "nothing reached the other tenant")
}

// What injected SQL on a tenant's connection can no longer do. Two role connections
// for two tenants: each request reuses a backend of the other's. Then the
// refusals are checked to fail when a grant is too broad: each grant below flips the
// case it names from refused to allowed.
func TestRolesRefuseAnotherTenant(t *testing.T) {
	a, b := newTenantName("ra"), newTenantName("rb")
	e := rolesEnv(t, tenant.Config{}, a, b)
	roleA, roleB := roleOf(t, e, a), roleOf(t, e, b)
	checkRefusals(t, e, a, b, roleA, roleB)

	qb := `"` + b + `"`
	cases := map[string]refusal{}
	for _, tc := range refusals(a, b, roleA, roleB) {
		cases[tc.name] = tc
	}
	for _, m := range []struct{ grant, revoke, flips string }{
		{"GRANT USAGE ON SCHEMA " + qb + " TO " + roleA + "; GRANT SELECT ON " + qb + ".items TO " + roleA,
			"REVOKE SELECT ON " + qb + ".items FROM " + roleA + "; REVOKE USAGE ON SCHEMA " + qb + " FROM " + roleA, "another tenant's table, qualified"},
		{"GRANT " + roleB + " TO " + roleA, "REVOKE " + roleB + " FROM " + roleA, "SET ROLE"},
		{"GRANT USAGE ON SCHEMA tenant_registry TO " + roleA + "; GRANT SELECT ON tenant_registry.tenants TO " + roleA,
			"REVOKE SELECT ON tenant_registry.tenants FROM " + roleA + "; REVOKE USAGE ON SCHEMA tenant_registry FROM " + roleA, "the registry"},
		{`GRANT CREATE ON SCHEMA "` + a + `" TO ` + roleA, `REVOKE CREATE ON SCHEMA "` + a + `" FROM ` + roleA + `; DROP TABLE "` + a + `".evil`, "CREATE TABLE"},
	} {
		t.Run("too broad: "+m.flips, func(t *testing.T) {
			tc := cases[m.flips]
			e.exec(t, m.grant)
			defer e.exec(t, m.revoke)
			code, _ := inRequest(t, e, a, tc.sql, tc.read)
			assert.Equal(t, "", code, "the grant is seen: %s", m.grant)
		})
	}
	code, _ := inRequest(t, e, a, cases["CREATE TABLE"].sql, "")
	assert.Equal(t, "42501", code, "revoked again")
}

// A table (and its sequence) that a later migration makes is the tenant role's to use,
// through the default privileges granted with the role.
func TestRolesReachLaterTables(t *testing.T) {
	a := newTenantName("rl")
	e := rolesEnv(t, tenant.Config{}, a)
	later := fstest.MapFS{"002_later.sql": {Data: []byte(`CREATE TABLE later (id serial PRIMARY KEY, note text)`)}}
	for k, v := range appMigrations {
		later[k] = v
	}
	e2 := rolesEnv(t, tenant.Config{Migrations: later})
	require.NoError(t, e2.mgr.Provisioner().Migrate(context.Background(), a))
	code, value := inRequest(t, e2, a, "INSERT INTO later (note) VALUES ('x')", "SELECT id::text FROM later")
	assert.Equal(t, "", code)
	assert.Equal(t, "1", value)
	_ = e
}

// Three tenants over two role connections, one after another and all at once: every
// request is served, as its own tenant, and the tenants' roles never hold more than two
// backends (an idle one of the least recently used tenant is closed for another).
func TestRolesWarmSet(t *testing.T) {
	names := []string{newTenantName("rw"), newTenantName("rw"), newTenantName("rw")}
	e := rolesEnv(t, tenant.Config{}, names...)
	for i := range 9 {
		name := names[i%3]
		code, value := inRequest(t, e, name, "SELECT 1", "SELECT current_schema()")
		require.Equal(t, "", code)
		require.Equal(t, name, value)
		require.LessOrEqual(t, tenantBackends(t, e), 2)
	}
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			name := names[i%3]
			code, value := inRequest(t, e, name, "SELECT pg_sleep(0.01)", "SELECT current_schema()")
			assert.Equal(t, "", code)
			assert.Equal(t, name, value)
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, tenantBackends(t, e), 2)
}
