package tenant_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/changes"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// canLogin reports whether role exists and may log in.
func canLogin(t *testing.T, e *env, role string) (exists, login bool) {
	t.Helper()
	err := e.admin.QueryRow(context.Background(), `SELECT true, rolcanlogin FROM pg_roles WHERE rolname = $1`, role).Scan(&exists, &login)
	if err != nil {
		return false, false
	}
	return exists, login
}

// The role follows the tenant: made with it, refused logins while it is suspended
// (its sessions ended), allowed again when resumed, dropped with it; a role lost by
// hand is made again by RepairRoles. The password appears in no log.
func TestRolesFollowTheTenant(t *testing.T) {
	a := newTenantName("rlife")
	e := rolesEnv(t, tenant.Config{}, a)
	ctx := context.Background()
	role := roleOf(t, e, a)
	exists, login := canLogin(t, e, role)
	require.True(t, exists && login)
	code, _ := inRequest(t, e, a, "INSERT INTO items (name) VALUES ('before')", "")
	require.Equal(t, "", code)

	require.NoError(t, e.mgr.Suspend(ctx, a))
	_, login = canLogin(t, e, role)
	assert.False(t, login, "suspended: no logins")
	assert.Equal(t, 0, e.count(t, `SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, role), "its sessions ended")
	require.NoError(t, e.mgr.Resume(ctx, a))
	_, login = canLogin(t, e, role)
	assert.True(t, login)
	code, value := inRequest(t, e, a, "SELECT 1", "SELECT count(*)::text FROM items")
	assert.Equal(t, "", code)
	assert.Equal(t, "1", value, "served again, as its role")

	dropRole(t, e, role)
	for range 4 { // twice the role connections: a failed login holds no room in the warm set
		code, _ = inRequest(t, e, a, "SELECT 1", "")
		assert.NotEqual(t, "", code, "a lost role fails the request")
	}
	n, err := e.mgr.Provisioner().RepairRoles(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 1)
	code, value = inRequest(t, e, a, "SELECT 1", "SELECT count(*)::text FROM items")
	assert.Equal(t, "", code, "repaired")
	assert.Equal(t, "1", value)

	require.NoError(t, e.mgr.Drop(ctx, a))
	exists, _ = canLogin(t, e, role)
	assert.False(t, exists, "dropped with the tenant")

	password := schema.Password(roleSecret, role)
	assert.NotContains(t, e.logs.String(), password)
	assert.Equal(t, 0, e.count(t, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()`, password))
}

// dropRole drops role by hand, as an operator's mistake would.
func dropRole(t *testing.T, e *env, role string) {
	t.Helper()
	e.exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '`+role+`'`)
	e.exec(t, `DROP OWNED BY `+role+`; DROP ROLE `+role)
}

// A tenant signed up from the stock of spares has the spare's role, made with the
// spare: the role is named by the schema's OID, which the rename keeps.
func TestRolesFromStock(t *testing.T) {
	ctx := context.Background()
	e := newEnvOn(t, testdb.NewDatabase(t), 2, nil, tenant.Config{Resolver: byHeader, Spares: 1,
		Roles: &schema.Roles{Secrets: [][]byte{roleSecret}}, RoleConns: 2})
	t.Cleanup(func() { dropRolesOn(t, e) })
	require.NoError(t, e.mgr.Provisioner().FillStock(ctx))
	var spare, signedUp uint32
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT schema_oid FROM tenant_registry.tenants WHERE state = 'spare'`).Scan(&spare))
	a := newTenantName("rstock")
	require.NoError(t, e.mgr.Provisioner().Create(ctx, a))
	// The spare's schema, by its OID: the stock refills in the background meanwhile.
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT schema_oid FROM tenant_registry.tenants WHERE name = $1`, a).Scan(&signedUp))
	require.Equal(t, spare, signedUp, "the spare was taken")
	code, value := inRequest(t, e, a, "INSERT INTO items (name) VALUES ('signed up')", "SELECT owner FROM items")
	assert.Equal(t, "", code)
	assert.Equal(t, a, value)
	require.NoError(t, e.mgr.Drop(ctx, a))
	e.mgr.Close()
}

// dropRolesOn is dropRoles for an env on a database of its own.
func dropRolesOn(t *testing.T, e *env) { dropTenantRoles(t, e.pool) }

// Shared tables are the tenants' to read, not to write; change signals fire for a
// tenant role's writes.
func TestRolesSharedTablesAndSignals(t *testing.T) {
	a := newTenantName("rshared")
	shared := fstest.MapFS{"001_plans.sql": {Data: []byte(`CREATE TABLE plans (id int PRIMARY KEY, seats int); INSERT INTO plans VALUES (1, 5)`)}}
	// A database of its own: shared migrations are the database's, and other tests
	// have theirs.
	e := newEnvOn(t, testdb.NewDatabase(t), 2, nil, tenant.Config{Resolver: byHeader, SharedMigrations: shared, Migrations: signalMigrations,
		Roles: &schema.Roles{Secrets: [][]byte{roleSecret}}, RoleConns: 2}, a)
	t.Cleanup(func() { dropRolesOn(t, e) })
	t.Cleanup(func() { _ = e.mgr.Drop(context.Background(), a) })
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	code, value := inRequest(t, e, a, "INSERT INTO docs (id, title) VALUES (7, 'x')", "SELECT seats::text FROM shared.plans")
	assert.Equal(t, "", code)
	assert.Equal(t, "5", value)
	assert.Equal(t, changes.Change{Schema: a, Table: "docs", Op: changes.Insert, Key: []string{"7"}}, next(t, sub))
	code, _ = inRequest(t, e, a, "UPDATE shared.plans SET seats = 0", "")
	assert.Equal(t, "42501", code, "shared tables are read-only to tenant roles")
}
