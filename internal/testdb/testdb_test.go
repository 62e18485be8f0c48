package testdb

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func databases(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, adminURL)
	require.NoError(t, err)
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT datname::text FROM pg_database")
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// A database whose maker died (a panic skips the cleanup) is dropped by the next run;
// one whose maker lives, or that another host made, is kept.
func TestDropOrphans(t *testing.T) {
	ctx := context.Background()
	dead := osexec.Command("true")
	require.NoError(t, dead.Run())
	host, _ := os.Hostname()
	labels := map[string]string{
		"tenant_test_orphan_dead":  fmt.Sprintf("tenant testdb host=%s pid=%d", host, dead.Process.Pid),
		"tenant_test_orphan_alive": owner(),
		"tenant_test_orphan_other": fmt.Sprintf("tenant testdb host=%s-elsewhere pid=%d", host, dead.Process.Pid),
	}
	for name, label := range labels {
		ident := pgx.Identifier{name}.Sanitize()
		require.NoError(t, exec(ctx, adminURL, "CREATE DATABASE "+ident))
		require.NoError(t, exec(ctx, adminURL, "COMMENT ON DATABASE "+ident+" IS "+quoteLiteral(label)))
		t.Cleanup(func() { _ = withAdmin(ctx, func(c *pgx.Conn) error { return dropDatabase(ctx, c, name) }) })
	}
	require.NoError(t, withAdmin(ctx, func(c *pgx.Conn) error { dropOrphans(ctx, c); return nil }))
	dbs := databases(t)
	assert.False(t, dbs["tenant_test_orphan_dead"])
	assert.True(t, dbs["tenant_test_orphan_alive"])
	assert.True(t, dbs["tenant_test_orphan_other"])
	assert.True(t, dbs[databaseName(t)], "this package's own database stays")
}

func databaseName(t *testing.T) string {
	cfg, err := pgx.ParseConfig(URL(t))
	require.NoError(t, err)
	return cfg.Database
}

// A database dropped takes with it the tenant roles named after it (roles are the
// cluster's), and only those: a role of a database that still exists stays.
func TestDropDatabaseDropsItsTenantRoles(t *testing.T) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, adminURL)
	require.NoError(t, err)
	defer c.Close(ctx)
	name, err := createDatabase(ctx, c)
	require.NoError(t, err)
	var gone, kept uint32
	require.NoError(t, c.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = $1", name).Scan(&gone))
	require.NoError(t, c.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = current_database()").Scan(&kept))
	goneRole, keptRole := fmt.Sprintf("tenant_%d_1", gone), fmt.Sprintf("tenant_%d_1", kept)
	_, err = c.Exec(ctx, "CREATE ROLE "+goneRole+"; CREATE ROLE "+keptRole)
	require.NoError(t, err)
	defer func() { _, _ = c.Exec(ctx, "DROP ROLE IF EXISTS "+keptRole) }()

	require.NoError(t, dropDatabase(ctx, c, name))
	var roles []string
	rows, err := c.Query(ctx, "SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1", []string{goneRole, keptRole})
	require.NoError(t, err)
	roles, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{keptRole}, roles)
}
