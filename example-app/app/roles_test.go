package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/example-app/app"
)

// With TENANT_ROLES_SECRET (RoleSecrets), the whole HTTP contract works with each
// tenant's requests logged in as its own role, and tenants keep to their own data.
func TestRolesMode(t *testing.T) {
	f := newFixture(t, app.Config{RoleSecrets: [][]byte{[]byte(strings.Repeat("example secret ", 3))}})
	t.Cleanup(func() {
		_, err := f.pool.Exec(context.Background(), `DO $$ DECLARE r text; BEGIN
			FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'tenant\_' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '\_%' LOOP
				PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = r;
				EXECUTE format('DROP OWNED BY %I', r); EXECUTE format('DROP ROLE %I', r);
			END LOOP; END $$`)
		assert.NoError(t, err)
	})
	a, b := f.tenant(t), f.tenant(t)
	rec := f.do(byPath, a, "POST", "/documents", `{"title": {"en": "A's report"}}`)
	require.Equal(t, 201, rec.Code, rec.Body.String())
	assert.Equal(t, 200, f.do(byPath, a, "POST", "/counter", "").Code)
	assert.Contains(t, f.do(byPath, a, "GET", "/documents", "").Body.String(), "A's report")
	assert.Equal(t, "[]\n", f.do(byPath, b, "GET", "/documents", "").Body.String())

	var sessions int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE usename LIKE 'tenant\_' ||
		(SELECT oid FROM pg_database WHERE datname = current_database()) || '\_%'`).Scan(&sessions))
	assert.Positive(t, sessions, "requests ran as tenant roles")
}
