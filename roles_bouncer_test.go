package tenant_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/bouncer"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/schema"
)

// roleBouncer starts PgBouncer in transaction mode in front of the package database,
// checking each tenant role's own SCRAM password through auth_query (no tenant in any
// file), with four server connections in all.
func roleBouncer(t *testing.T) *bouncer.Bouncer {
	t.Helper()
	ctx := context.Background()
	admin := testdb.Pool(t)
	auth := newTenantName("bouncer_auth")
	var db uint32
	require.NoError(t, admin.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = current_database()`).Scan(&db))
	_, err := admin.Exec(ctx, fmt.Sprintf(`CREATE ROLE %[1]s LOGIN PASSWORD 'auth-secret';
		CREATE SCHEMA %[1]s;
		CREATE FUNCTION %[1]s.lookup(u text) RETURNS TABLE (usename text, passwd text)
			LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
			AS $$SELECT rolname::text, rolpassword FROM pg_authid
				WHERE rolname = u AND rolcanlogin AND rolname LIKE 'tenant\_%[2]d\_%%'$$;
		REVOKE ALL ON FUNCTION %[1]s.lookup(text) FROM PUBLIC;
		GRANT USAGE ON SCHEMA %[1]s TO %[1]s;
		GRANT EXECUTE ON FUNCTION %[1]s.lookup(text) TO %[1]s;`, auth, db))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), fmt.Sprintf(`DROP SCHEMA %[1]s CASCADE; DROP ROLE %[1]s`, auth))
	})
	return bouncer.ForTest(t, testdb.URL(t), bouncer.Options{
		Mode: "transaction", PoolSize: 2, AuthType: "scram-sha-256",
		AuthUser: auth, AuthPassword: "auth-secret", AuthQuery: "SELECT usename, passwd FROM " + auth + ".lookup($1)",
		Settings: []string{"max_db_connections = 4", "query_wait_timeout = 5"},
	})
}

// Behind PgBouncer in transaction mode, tenant roles log in with their own passwords
// (checked by PgBouncer against the server's SCRAM secrets) and keep every guarantee.
// A rotation needs no downtime: a Manager given the new secret and the old one logs
// in while roles still have old passwords, RepairRoles sets the new ones, and then the
// old secret alone is refused.
func TestRolesBehindPgBouncer(t *testing.T) {
	b := roleBouncer(t)
	cfg, err := pgx.ParseConfig(testdb.URL(t))
	require.NoError(t, err)
	rolesDSN := b.URL("ignored", cfg.Database)
	oldSecret := []byte(strings.Repeat("old secret ", 4))
	newSecret := []byte(strings.Repeat("new secret ", 4))
	manager := func(secrets ...[]byte) *env {
		return rolesEnvOn(t, tenant.Config{Roles: &schema.Roles{Secrets: secrets}, RolesDSN: rolesDSN})
	}
	a, c := newTenantName("rbounce"), newTenantName("rbounce")
	e := manager(oldSecret)
	for _, name := range []string{a, c} {
		require.NoError(t, e.mgr.Provisioner().Ensure(context.Background(), name))
		t.Cleanup(func() { _ = e.mgr.Drop(context.Background(), name) })
	}

	checkRefusals(t, e, a, c, roleOf(t, e, a), roleOf(t, e, c))

	rotating := manager(newSecret, oldSecret)
	code, _ := inRequest(t, rotating, a, "SELECT 1", "SELECT count(*)::text FROM items")
	assert.Equal(t, "", code, "the old password, while the role has it")
	_, err = rotating.mgr.Provisioner().RepairRoles(context.Background())
	require.NoError(t, err)
	rotated := manager(newSecret)
	code, _ = inRequest(t, rotated, c, "SELECT 1", "SELECT count(*)::text FROM items")
	assert.Equal(t, "", code, "the new password")
	stale := manager(oldSecret)
	code, _ = inRequest(t, stale, c, "SELECT 1", "SELECT count(*)::text FROM items")
	assert.NotEqual(t, "", code, "the old password alone, after the rotation")
}

// rolesEnvOn is rolesEnv on a pool that sends no prepared statements (PgBouncer 1.18
// keeps none across transactions), with the roles' connections where cfg says.
func rolesEnvOn(t *testing.T, cfg tenant.Config) *env {
	t.Helper()
	cfg.Resolver, cfg.RoleConns = byHeader, 2
	e := newEnvOn(t, testdb.URL(t), 2, []pool.Option{pool.WithQueryExecMode(pgx.QueryExecModeExec)}, cfg)
	t.Cleanup(func() { dropRoles(t, e) })
	return e
}
