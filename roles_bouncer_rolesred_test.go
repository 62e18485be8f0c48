package tenant_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// Behind PgBouncer (transaction mode, auth_query): PgBouncer pools server connections
// per user, so a server connection of A's role never runs B's transaction; identity
// switches are refused there as directly. A tenant that changes its own password by
// injection keeps the client connections it has, locks its own new logins out (08P01)
// and nobody else's, until RepairRoles sets the derived password again. No password
// appears in the Managers' logs (at Debug) or PgBouncer's, refused logins included.
func TestRolesredBehindPgBouncer(t *testing.T) {
	b := roleBouncer(t)
	cfg, err := pgx.ParseConfig(testdb.URL(t))
	require.NoError(t, err)
	rolesDSN := b.URL("ignored", cfg.Database)
	manager := func() *env {
		return rolesEnvOn(t, tenant.Config{Roles: &schema.Roles{Secrets: [][]byte{roleSecret}}, RolesDSN: rolesDSN})
	}
	a, c := newTenantName("rrpb"), newTenantName("rrpb")
	e := manager()
	for _, name := range []string{a, c} {
		require.NoError(t, e.mgr.Provisioner().Ensure(context.Background(), name))
		t.Cleanup(func() { _ = e.mgr.Drop(context.Background(), name) })
	}
	roleA, roleC := roleOf(t, e, a), roleOf(t, e, c)

	backend := "SELECT pg_backend_pid() || '@' || (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())"
	seen := map[string]string{}
	for i := range 6 {
		name := []string{a, c}[i%2]
		code, value := inRequest(t, e, name, "SELECT 1", backend)
		require.Equal(t, "", code)
		if other, ok := seen[value]; ok {
			assert.Equal(t, name, other, "a server connection served two tenants")
		}
		seen[value] = name
	}
	for _, sql := range []string{"SET SESSION AUTHORIZATION " + roleC, "SET ROLE " + roleC, "SELECT set_config('role', '" + roleC + "', false)"} {
		code, _ := inRequest(t, e, a, sql, "")
		assert.Equal(t, "42501", code, sql)
	}

	code, _ := inRequest(t, e, a, "ALTER ROLE "+roleA+" PASSWORD 'chosen by the attacker'", "")
	require.Equal(t, "", code, "a role may change its own password")
	code, _ = inRequest(t, e, a, "SELECT 1", "SELECT 1::text")
	assert.Equal(t, "", code, "its open client connection stays")
	fresh := manager()
	code, _ = inRequest(t, fresh, a, "SELECT 1", "SELECT 1::text")
	assert.Equal(t, "08P01", code, "its new logins are refused")
	code, _ = inRequest(t, fresh, c, "SELECT 1", "SELECT 1::text")
	assert.Equal(t, "", code, "the other tenant logs in")

	_, err = e.mgr.Provisioner().RepairRoles(context.Background())
	require.NoError(t, err)
	repaired := manager()
	code, value := inRequest(t, repaired, a, "SELECT 1", "SELECT session_user::text")
	assert.Equal(t, "", code, "repaired")
	assert.Equal(t, roleA, value)

	for _, l := range []string{e.logs.String(), fresh.logs.String(), repaired.logs.String(), b.Log()} {
		for _, role := range []string{roleA, roleC} {
			assert.NotContains(t, l, schema.Password(roleSecret, role))
		}
		assert.False(t, strings.Contains(l, "SCRAM-SHA-256$"), "no verifier in a log")
	}
	assert.Contains(t, fresh.logs.String(), roleA, "the refused login was logged (by role, not password)")
}
