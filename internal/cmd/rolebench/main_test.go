package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// A short run at 1 and 3 tenants prints every table, the shared pools at their size
// and opening nothing during the phases, and leaves no role and no database behind
// (roles are cluster-wide). Timings are printed, never asserted.
func TestRun(t *testing.T) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix = "tenant_rolebench_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	admin := testdb.URL(t)
	cfg := config{dsn: admin, database: prefix, tenants: []int{1, 3}, rounds: 1,
		duration: 200 * time.Millisecond, warmup: 50 * time.Millisecond, workers: 2, conns: 2, samples: 2}
	var out bytes.Buffer
	require.NoError(t, run(ctx, cfg, &out))
	t.Log(out.String())

	for _, row := range []string{
		`\| new connection, trust, as a tenant's login role \| [0-9.]+ ms \|`,
		`\| CREATE ROLE with a SCRAM secret \+ grants for those 20 tables \([0-9.]+×\) \| [0-9.]+ ms \|`,
		`\| 1 \| default \| 1\.00× \| [0-9]+ \| 2 \| 0\.0 \|`,
		`\| 1 \| SET LOCAL ROLE \| [0-9.e-]+× \| [0-9]+ \| 2 \| 0\.0 \|`,
		`\| 3 \| login roles, warm set \| [0-9.e-]+× \| [0-9]+ \| [0-9]+ \| [0-9.]+ \|`,
	} {
		assert.Regexp(t, regexp.MustCompile(row), out.String())
	}
	c, err := pgx.Connect(ctx, admin)
	require.NoError(t, err)
	defer c.Close(ctx)
	var roles, dbs int
	require.NoError(t, c.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1", prefix+"%").Scan(&roles))
	require.NoError(t, c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", prefix).Scan(&dbs))
	assert.Zero(t, roles)
	assert.Zero(t, dbs)
}
