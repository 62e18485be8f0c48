package main

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// The fleet benchmark at 200 tenants: a no-op MigrateAll is one statement, and each
// ADD COLUMN reaches every tenant, serial and in parallel.
func TestFleet200(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewDatabase(t)
	conn, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	cfg := config{dsn: url, database: conn.Database, tenants: 200}

	r, err := run(ctx, cfg, t.Output())
	require.NoError(t, err)
	assert.Equal(t, 200, r.made)
	assert.Equal(t, int64(1), r.noopQueries, "one statement plans the run")
	assert.Equal(t, 200, r.serialN)
	assert.Equal(t, 200, r.paraN)

	var columns int
	require.NoError(t, testdb.PoolFor(t, url).QueryRow(ctx, `SELECT count(*) FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname = 'items' AND n.nspname = 'fleet_00199' AND a.attnum > 0 AND NOT a.attisdropped`).Scan(&columns))
	assert.Equal(t, 4, columns, "id, name and the two added columns")
}
