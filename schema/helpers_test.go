package schema_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// testMigrations use both an extension type (hstore) and an operator class from
// btree_gist, so they only apply when search_path reaches "extensions". Each records
// its run in public.migration_log so tests can count runs.
var testMigrations = fstest.MapFS{
	"001_documents.sql": {Data: []byte(`
CREATE TABLE documents (id serial PRIMARY KEY, title hstore NOT NULL);
INSERT INTO public.migration_log VALUES (current_schema(), 1);`)},
	"002_index.sql": {Data: []byte(`
CREATE INDEX documents_id_gist ON documents USING gist (id);
INSERT INTO public.migration_log VALUES (current_schema(), 2);`)},
}

// testExtensions are what testMigrations need.
var testExtensions = []string{"btree_gist", "hstore"}

// setup returns a pool on the package database with public.migration_log in place.
func setup(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := testdb.Pool(t)
	_, err := pool.Exec(context.Background(), `SELECT pg_advisory_xact_lock(42);
		CREATE TABLE IF NOT EXISTS public.migration_log (schema_name text NOT NULL, version int NOT NULL)`)
	require.NoError(t, err)
	return pool
}

// newProvisioner makes a Provisioner that logs to the test, with testMigrations and
// the extensions they need unless cfg names others. (Tests of Config's zero value
// call NewProvisioner.)
func newProvisioner(t testing.TB, db schema.DB, cfg schema.Config) *schema.Provisioner {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	if cfg.Migrations == nil {
		cfg.Migrations = testMigrations
	}
	if cfg.Extensions == nil {
		cfg.Extensions = testExtensions
	}
	p, err := schema.NewProvisioner(db, cfg)
	require.NoError(t, err)
	return p
}

// tenantName returns a fresh valid schema name; the schema is dropped after the test.
func tenantName(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS "`+name+`" CASCADE`)
		require.NoError(t, err)
	})
	return name
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// runs counts how often each migration version ran in the schema.
func runs(t *testing.T, pool *pgxpool.Pool, name string) map[int]int {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT version, count(*) FROM public.migration_log WHERE schema_name = $1 GROUP BY version`, name)
	require.NoError(t, err)
	defer rows.Close()
	out := map[int]int{}
	for rows.Next() {
		var v, n int
		require.NoError(t, rows.Scan(&v, &n))
		out[v] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// isTenant reports whether Lookup finds name.
func isTenant(t *testing.T, p *schema.Provisioner, name string) bool {
	t.Helper()
	_, err := p.Lookup(context.Background(), name)
	if errors.Is(err, schema.ErrNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}
