package schema_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

func TestProvisionerLifecycle(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)

	ok, err := p.Exists(ctx, name)
	require.NoError(t, err)
	assert.False(t, ok)

	require.NoError(t, p.Create(ctx, name))
	ok, err = p.Exists(ctx, name)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, map[int]int{1: 1, 2: 1}, runs(t, pool, name))
	assert.Equal(t, 2, count(t, pool, `SELECT count(*) FROM "`+name+`".tenant_migrations`))
	assert.Equal(t, 1, count(t, pool, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'documents_id_gist'`, name))

	err = p.Create(ctx, name)
	assert.ErrorIs(t, err, schema.ErrExists)

	created, err := p.CreateIfNotExists(ctx, name)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, map[int]int{1: 1, 2: 1}, runs(t, pool, name), "nothing ran twice")

	// A new release adds a migration: Migrate applies only that one.
	more := fstest.MapFS{"003_more.sql": {Data: []byte(`ALTER TABLE documents ADD COLUMN body text;
		INSERT INTO public.migration_log VALUES (current_schema(), 3);`)}}
	for k, v := range testMigrations {
		more[k] = v
	}
	p2 := newProvisioner(t, pool, schema.Config{Migrations: more})
	require.NoError(t, p2.Migrate(ctx, name))
	assert.Equal(t, map[int]int{1: 1, 2: 1, 3: 1}, runs(t, pool, name))
	assert.Len(t, p2.Migrations(), 3)

	names, err := p.List(ctx, "")
	require.NoError(t, err)
	assert.Contains(t, names, name)

	require.NoError(t, p.Drop(ctx, name))
	ok, err = p.Exists(ctx, name)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.ErrorIs(t, p.Drop(ctx, name), schema.ErrNotFound)
	assert.ErrorIs(t, p.Migrate(ctx, name), schema.ErrNotFound)

	created, err = p.CreateIfNotExists(ctx, name)
	require.NoError(t, err)
	assert.True(t, created)
}

// A tenant dropped behind the Provisioner's back (another process, a DROP SCHEMA by
// hand) is seen at once: Ensure provisions it again, from scratch.
func TestEnsureSeesDropByAnyone(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	require.NoError(t, p.Ensure(ctx, name))
	_, err := pool.Exec(ctx, `DROP SCHEMA "`+name+`" CASCADE`)
	require.NoError(t, err)

	ok, err := p.Exists(ctx, name)
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, p.Ensure(ctx, name))
	ok, err = p.Exists(ctx, name)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, map[int]int{1: 2, 2: 2}, runs(t, pool, name), "every migration ran again in the new schema")
	assert.Equal(t, 2, count(t, pool, `SELECT count(*) FROM "`+name+`".tenant_migrations`))
}

func TestDropForgetsEnsure(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	require.NoError(t, p.Ensure(ctx, name))
	require.NoError(t, p.Drop(ctx, name))
	require.NoError(t, p.Ensure(ctx, name), "Ensure after Drop provisions again")
	ok, err := p.Exists(ctx, name)
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestFailedMigrationCreatesNothing(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	bad := fstest.MapFS{
		"001_ok.sql":     {Data: []byte("CREATE TABLE fine (id int);")},
		"002_broken.sql": {Data: []byte("CREATE TABLE broken (id no_such_type);")},
	}
	p := newProvisioner(t, pool, schema.Config{Migrations: bad})
	name := tenantName(t, pool)
	err := p.Ensure(ctx, name)
	require.ErrorIs(t, err, schema.ErrMigrationFailed)
	assert.Contains(t, err.Error(), "002_broken.sql")
	ok, err := p.Exists(ctx, name)
	require.NoError(t, err)
	assert.False(t, ok, "schema, tables and version rows roll back together")
}

// Invalid names are refused before any SQL: on a closed pool every SQL attempt would
// fail with a pool error, so ErrInvalidName proves validation came first.
func TestInvalidNamesBuildNoSQL(t *testing.T) {
	ctx := context.Background()
	closed := testdb.Pool(t)
	closed.Close()
	p := newProvisioner(t, closed, schema.Config{Reserved: []string{"audit"}})
	calls := map[string]func(string) error{
		"Exists":            func(n string) error { _, err := p.Exists(ctx, n); return err },
		"Create":            func(n string) error { return p.Create(ctx, n) },
		"CreateIfNotExists": func(n string) error { _, err := p.CreateIfNotExists(ctx, n); return err },
		"Ensure":            func(n string) error { return p.Ensure(ctx, n) },
		"Migrate":           func(n string) error { return p.Migrate(ctx, n) },
		"Drop":              func(n string) error { return p.Drop(ctx, n) },
		"Lookup":            func(n string) error { _, err := p.Lookup(ctx, n); return err },
		"Adopt":             func(n string) error { return p.Adopt(ctx, n) },
	}
	for fn, call := range calls {
		for _, bad := range []string{"", "Acme", "pg_x", "a--b", "public", "extensions", "tenant_registry", "audit", "x\n", `a"; DROP SCHEMA public; --`} {
			assert.ErrorIs(t, call(bad), schema.ErrInvalidName, "%s(%q)", fn, bad)
		}
	}
	_, err := p.List(ctx, "bad-ns")
	assert.ErrorIs(t, err, schema.ErrInvalidNamespace)
}

func TestInvalidNamesCreateNothing(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	before := count(t, pool, "SELECT count(*) FROM pg_namespace")
	// "Acme" would be a distinct quoted identifier; 64 bytes would be truncated to 63.
	for _, bad := range []string{"Acme", "0day", strings.Repeat("a", 64)} {
		assert.ErrorIs(t, p.Ensure(ctx, bad), schema.ErrInvalidName)
	}
	assert.Equal(t, before, count(t, pool, "SELECT count(*) FROM pg_namespace"))
}

// List returns tenants only: never a schema this package did not create, whatever
// its name, nor a registered tenant whose schema was dropped by hand.
func TestList(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{Reserved: []string{"listns_reserved"}, Migrations: fstestEmpty()})
	for _, n := range []string{"listns-b", "listns-a", "listnsx", "listns_c", "listns-dropped"} {
		require.NoError(t, p.Ensure(ctx, n))
		t.Cleanup(func() { _ = p.Drop(ctx, n) })
	}
	_, err := pool.Exec(ctx, `DROP SCHEMA "listns-dropped" CASCADE`)
	require.NoError(t, err)
	for _, n := range []string{"listns-foreign", "listns_reserved", "listns-Upper"} {
		_, err := pool.Exec(ctx, `CREATE SCHEMA "`+n+`"`)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = pool.Exec(ctx, `DROP SCHEMA "`+n+`"`) })
	}

	got, err := p.List(ctx, "listns")
	require.NoError(t, err)
	assert.Equal(t, []string{"listns-a", "listns-b"}, got)

	all, err := p.List(ctx, "")
	require.NoError(t, err)
	assert.True(t, slices.IsSorted(all))
	for _, n := range []string{"listns-a", "listns-b", "listnsx", "listns_c"} {
		assert.Contains(t, all, n)
	}
	for _, n := range []string{"public", "information_schema", "extensions", "tenant_registry", "pg_catalog",
		"listns-foreign", "listns_reserved", "listns-Upper", "listns-dropped"} {
		assert.NotContains(t, all, n)
	}

	none, err := p.List(ctx, "nosuchns")
	require.NoError(t, err)
	assert.Empty(t, none)
}
