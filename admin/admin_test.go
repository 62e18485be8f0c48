package admin_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/admin"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

var notes = fstest.MapFS{"001_notes.sql": {Data: []byte("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")}}

// run runs one command line on a Manager of dsn with migrations, and counts the
// Managers it opened.
type run struct {
	dsn        string
	migrations fstest.MapFS
	roles      *schema.Roles
	opened     int
}

func (r *run) do(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut strings.Builder
	cmd := admin.Command{Stdout: &out, Stderr: &errOut, Open: func(ctx context.Context) (*tenant.Manager, func(), error) {
		r.opened++
		mgr, err := tenant.New(ctx, tenant.Config{DSN: r.dsn, Migrations: r.migrations, Roles: r.roles})
		if err != nil {
			return nil, nil, err
		}
		return mgr, mgr.Close, nil
	}}
	err = cmd.Run(context.Background(), args)
	return out.String(), errOut.String(), err
}

func TestTenantsCommands(t *testing.T) {
	r := &run{dsn: testdb.NewDatabase(t), migrations: notes}

	out, _, err := r.do(t, "tenants", "create", "adm-a", "adm-b")
	require.NoError(t, err)
	assert.Equal(t, "created adm-a\ncreated adm-b\n", out)

	opened := r.opened
	_, _, err = r.do(t, "tenants", "create", "adm-c", "Bad Name", "public")
	assert.ErrorIs(t, err, schema.ErrInvalidName)
	assert.ErrorIs(t, err, schema.ErrReserved)
	assert.Equal(t, opened, r.opened, "a bad name: nothing done, not even a connection")

	out, _, err = r.do(t, "tenants", "suspend", "adm-b", "adm-nope")
	assert.ErrorIs(t, err, schema.ErrNotFound)
	assert.Equal(t, "suspended adm-b\n", out, "the other names are still done")

	out, _, err = r.do(t, "tenants", "list", "--long")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^NAME\s+STATE\s+VERSION\s+CREATED$`, lines[0])
	assert.Regexp(t, `^adm-a\s+active\s+1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`, lines[1])
	assert.Regexp(t, `^adm-b\s+suspended\s+1\s+`, lines[2])

	out, _, err = r.do(t, "tenants", "resume", "adm-b")
	require.NoError(t, err)
	assert.Equal(t, "resumed adm-b\n", out)
	out, _, err = r.do(t, "tenants", "drop", "adm-b")
	require.NoError(t, err)
	assert.Equal(t, "dropped adm-b\n", out)
	out, _, err = r.do(t, "tenants", "list")
	require.NoError(t, err)
	assert.Equal(t, "adm-a\n", out)

	out, _, err = r.do(t, "tenants", "adopt")
	require.NoError(t, err)
	assert.Equal(t, "nothing to adopt\n", out)

	_, _, err = r.do(t, "tenants", "repair-roles")
	assert.ErrorIs(t, err, schema.ErrRoles, "without Config.Roles")

	for _, args := range [][]string{{}, {"tenant"}, {"tenants"}, {"tenants", "rename", "a"}, {"tenants", "drop"}, {"sql", "adm-a"}} {
		opened := r.opened
		_, _, err := r.do(t, args...)
		assert.ErrorIs(t, err, admin.ErrUsage, "%q", args)
		assert.Equal(t, opened, r.opened)
	}
}

// repair-roles gives tenants made before Config.Roles their login roles.
func TestRepairRolesCommand(t *testing.T) {
	r := &run{dsn: testdb.NewDatabase(t), migrations: notes}
	_, _, err := r.do(t, "tenants", "create", "adm-r1", "adm-r2")
	require.NoError(t, err)
	r.roles = &schema.Roles{Secrets: [][]byte{[]byte(strings.Repeat("s", 32))}}
	t.Cleanup(func() {
		_, _, err := r.do(t, "tenants", "drop", "adm-r1", "adm-r2") // their roles with them
		assert.NoError(t, err)
		db := testdb.PoolFor(t, r.dsn)
		_, err = db.Exec(context.Background(), `DO $$ DECLARE g text := 'tenant_' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '_tenants';
			BEGIN EXECUTE format('DROP OWNED BY %I', g); EXECUTE format('DROP ROLE %I', g); END $$`)
		assert.NoError(t, err)
	})
	out, _, err := r.do(t, "tenants", "repair-roles")
	require.NoError(t, err)
	assert.Equal(t, "repaired the roles of 2 tenants\n", out)
	var roles int
	require.NoError(t, testdb.PoolFor(t, r.dsn).QueryRow(context.Background(), `SELECT count(*) FROM pg_roles WHERE rolcanlogin AND rolname LIKE
		'tenant\_' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '\_%'`).Scan(&roles))
	assert.Equal(t, 2, roles)
}

func TestMigrateCommand(t *testing.T) {
	r := &run{dsn: testdb.NewDatabase(t), migrations: notes}
	_, _, err := r.do(t, "tenants", "create", "mig-a", "mig-b", "mig-c")
	require.NoError(t, err)

	out, _, err := r.do(t, "migrate")
	require.NoError(t, err)
	assert.Regexp(t, `^0 migrated, 3 already current, 0 failed, 0 locked, in `, out)

	r.migrations = fstest.MapFS{"001_notes.sql": notes["001_notes.sql"],
		"002_pinned.sql": {Data: []byte("ALTER TABLE notes ADD COLUMN pinned bool NOT NULL DEFAULT false")}}
	out, progress, err := r.do(t, "migrate", "--parallel", "2", "--namespace", "mig")
	require.NoError(t, err)
	assert.Regexp(t, `^3 migrated, 0 already current, 0 failed, 0 locked, in `, out)
	assert.Regexp(t, `3/3 done: 3 changed, 0 current, 0 failed, 0 locked, \d+ tenants/s, eta 0s\n$`, progress)

	r.migrations["003_bad.sql"] = &fstest.MapFile{Data: []byte("ALTER TABLE nosuch ADD COLUMN x int")}
	out, progress, err = r.do(t, "migrate", "--canary", "1")
	assert.ErrorIs(t, err, schema.ErrCanaryFailed)
	assert.Regexp(t, `^0 migrated, 0 already current, 1 failed, 0 locked`, out)
	assert.Contains(t, progress, `mig-a: schema: migrate "mig-a": migration failed: 003_bad.sql`)
}

func TestSQLCommand(t *testing.T) {
	r := &run{dsn: testdb.NewDatabase(t), migrations: notes}
	_, _, err := r.do(t, "tenants", "create", "sql-a", "sql-b")
	require.NoError(t, err)

	out, _, err := r.do(t, "sql", "sql-a", "INSERT INTO notes (body) VALUES ('hello'), ('world')")
	require.NoError(t, err)
	assert.Equal(t, "INSERT 0 2\n", out)
	out, _, err = r.do(t, "sql", "sql-a", "SELECT id, body, nullif(id, id) AS nothing, current_schema() FROM notes ORDER BY id")
	require.NoError(t, err)
	assert.Equal(t, "id  body   nothing  current_schema\n1   hello  NULL     sql-a\n2   world  NULL     sql-a\n", out)
	out, _, err = r.do(t, "sql", "sql-b", "SELECT count(*) FROM notes")
	require.NoError(t, err)
	assert.Equal(t, "count\n0\n", out, "each tenant sees its own")

	out, _, err = r.do(t, "sql", "sql-a", "DELETE FROM notes; SELECT 1/0")
	assert.Error(t, err)
	assert.Empty(t, out)
	out, _, err = r.do(t, "sql", "sql-a", "SELECT count(*) FROM notes")
	require.NoError(t, err)
	assert.Equal(t, "count\n2\n", out, "a failing statement rolled back")

	_, _, err = r.do(t, "sql", "sql-nope", "SELECT 1")
	assert.ErrorIs(t, err, tenant.ErrUnknownTenant)
	opened := r.opened
	_, _, err = r.do(t, "sql", "Bad Name", "SELECT 1")
	assert.ErrorIs(t, err, schema.ErrInvalidName)
	assert.Equal(t, opened, r.opened)
}
