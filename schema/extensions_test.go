package schema_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

func extensionsIn(t *testing.T, db schema.DB) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT e.extname::text FROM pg_extension e
		JOIN pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname = 'extensions' ORDER BY 1`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

func TestExtensionsProvisionedOnce(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewDatabase(t)
	pool := testdb.PoolFor(t, url)
	p := newProvisioner(t, pool, schema.Config{Extensions: schema.CommonExtensions(), Migrations: fstestEmpty()})
	require.NoError(t, p.EnsureShared(ctx))
	assert.Equal(t, []string{"btree_gist", "hstore", "intarray", "unaccent"}, extensionsIn(t, pool))

	// Once done, a Provisioner does not ask again.
	once := testdb.PoolFor(t, url)
	p2 := newProvisioner(t, once, schema.Config{Extensions: schema.CommonExtensions()})
	require.NoError(t, p2.EnsureShared(ctx))
	once.Close()
	assert.NoError(t, p2.EnsureShared(ctx))

	// Tenant SQL finds them through search_path, with public absent from it.
	require.NoError(t, p.Ensure(ctx, "acme"))
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", schema.SearchPath("acme"))
	require.NoError(t, err)
	var s string
	require.NoError(t, tx.QueryRow(ctx, "SELECT unaccent('Zürich') || (hstore('a', 'b') -> 'a')").Scan(&s))
	assert.Equal(t, "Zurichb", s)
}

// fstestEmpty is a migration set with no files.
func fstestEmpty() fstest.MapFS { return fstest.MapFS{} }

// Config.Extensions lists what is created, and nothing else: its zero value, nil,
// means none, like an empty list.
func TestExtensionsConfigurable(t *testing.T) {
	tests := []struct {
		name       string
		extensions []string
		want       []string
	}{
		{"nil means none", nil, []string{}},
		{"empty means none", []string{}, []string{}},
		{"one", []string{"hstore"}, []string{"hstore"}},
		{"the common ones", schema.CommonExtensions(), []string{"btree_gist", "hstore", "intarray", "unaccent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			pool := testdb.PoolFor(t, testdb.NewDatabase(t))
			p, err := schema.NewProvisioner(pool, schema.Config{Extensions: tt.extensions})
			require.NoError(t, err)
			require.NoError(t, p.Ensure(ctx, "plain"))
			assert.Equal(t, tt.want, extensionsIn(t, pool))
		})
	}

	_, err := schema.NewProvisioner(nil, schema.Config{Extensions: []string{`hstore"; DROP`}})
	assert.ErrorIs(t, err, schema.ErrExtensionName)
}

// CommonExtensions returns a fresh slice: a caller that changes it changes no one
// else's configuration.
func TestCommonExtensionsIsACopy(t *testing.T) {
	a := schema.CommonExtensions()
	a[0] = "changed"
	assert.Equal(t, "btree_gist", schema.CommonExtensions()[0])
}

// A role that may not create the extensions gets the SQL a superuser must run; once a
// superuser ran exactly that, the same role provisions tenants without DDL rights on
// extensions.
func TestExtensionsNeedSuperuserHint(t *testing.T) {
	ctx := context.Background()
	adminURL := testdb.NewDatabase(t)
	admin := testdb.PoolFor(t, adminURL)
	roleURL, role := testdb.Role(t, adminURL)
	limited := testdb.PoolFor(t, roleURL)

	p := newProvisioner(t, limited, schema.Config{Extensions: schema.CommonExtensions(), Migrations: fstestEmpty()})
	err := p.Ensure(ctx, "acme")
	require.ErrorIs(t, err, schema.ErrExtensions)
	msg := err.Error()
	assert.Contains(t, msg, `CREATE EXTENSION IF NOT EXISTS "hstore" SCHEMA extensions;`)
	_, sql, ok := strings.Cut(msg, "a superuser must run: ")
	require.True(t, ok, msg)

	_, err = admin.Exec(ctx, sql)
	require.NoError(t, err, "the hint is runnable SQL")
	_, err = admin.Exec(ctx, "GRANT CREATE ON DATABASE "+pgx.Identifier{dbName(t, adminURL)}.Sanitize()+" TO "+pgx.Identifier{role}.Sanitize())
	require.NoError(t, err)

	require.NoError(t, p.Ensure(ctx, "acme"))
	_, err = p.Lookup(ctx, "acme")
	assert.NoError(t, err)
}

func TestExtensionInWrongSchema(t *testing.T) {
	ctx := context.Background()
	pool := testdb.PoolFor(t, testdb.NewDatabase(t))
	_, err := pool.Exec(ctx, "CREATE EXTENSION hstore SCHEMA public")
	require.NoError(t, err)
	p := newProvisioner(t, pool, schema.Config{Extensions: []string{"hstore"}})
	err = p.Ensure(ctx, "acme")
	require.ErrorIs(t, err, schema.ErrExtensions)
	assert.Contains(t, err.Error(), `ALTER EXTENSION "hstore" SET SCHEMA extensions`)
}

func dbName(t *testing.T, connString string) string {
	cfg, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	return cfg.Database
}

// A caller waiting for the shared schemas that another call is making waits only as
// long as its own context allows; no lock is held across the work.
func TestSharedSchemasWaitHonoursItsContext(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	lock, err := pool.Begin(ctx) // another process making the shared schemas
	require.NoError(t, err)
	defer func() { _ = lock.Rollback(ctx) }()
	_, err = lock.Exec(ctx, "SELECT pg_advisory_xact_lock($1, 0)", 0x54454e54) // the package's key for the shared schemas
	require.NoError(t, err)

	p := newProvisioner(t, pool, schema.Config{})
	first := make(chan error, 1)
	go func() { first <- p.Ensure(ctx, tenantName(t, pool)) }()
	require.Eventually(t, func() bool {
		return count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'`) >= 1
	}, 10*time.Second, 10*time.Millisecond)

	impatient := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		impatient <- p.Ensure(ctx, tenantName(t, pool))
	}()
	select {
	case err := <-impatient:
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Fatal("Ensure waited for the shared schemas past its caller's deadline")
	}
	require.NoError(t, lock.Rollback(ctx))
	assert.NoError(t, <-first)
}
