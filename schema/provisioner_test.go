package schema_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
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
	assert.False(t, isTenant(t, p, name))

	require.NoError(t, p.Create(ctx, name))
	assert.True(t, isTenant(t, p, name))
	assert.Equal(t, map[int]int{1: 1, 2: 1}, runs(t, pool, name))
	assert.Equal(t, 2, count(t, pool, `SELECT count(*) FROM "`+name+`".tenant_migrations`))
	assert.Equal(t, 1, count(t, pool, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'documents_id_gist'`, name))
	require.NoError(t, p.Ensure(ctx, name))
	assert.Equal(t, map[int]int{1: 1, 2: 1}, runs(t, pool, name), "nothing ran twice")

	names, err := p.List(ctx, "")
	require.NoError(t, err)
	assert.Contains(t, names, name)

	require.NoError(t, p.Drop(ctx, name))
	assert.False(t, isTenant(t, p, name))
	assert.ErrorIs(t, p.Drop(ctx, name), schema.ErrNotFound)
	require.NoError(t, p.Ensure(ctx, name), "Ensure after Drop provisions again")
	assert.True(t, isTenant(t, p, name))
}

// Each provisioning verb guarantees one thing, from whatever state the tenant is in:
// Ensure that it exists at the latest version, Create that it is new (else it changes
// nothing), Migrate that an existing tenant is at the latest version (it never
// creates one). None of them touches a schema that is not a tenant.
func TestProvisioningVerbs(t *testing.T) {
	v1 := fstest.MapFS{"001_a.sql": {Data: []byte("CREATE TABLE a (id int)")}}
	v2 := fstest.MapFS{"001_a.sql": v1["001_a.sql"], "002_b.sql": {Data: []byte("CREATE TABLE b (id int)")}}
	const missing = -1 // the name is not a tenant afterwards
	tests := []struct {
		state   string // before: missing, current (at v2), behind (at v1), foreign
		verb    string
		err     error
		version int64 // after
	}{
		{"missing", "Ensure", nil, 2},
		{"missing", "Create", nil, 2},
		{"missing", "Migrate", schema.ErrNotFound, missing},
		{"current", "Ensure", nil, 2},
		{"current", "Create", schema.ErrExists, 2},
		{"current", "Migrate", nil, 2},
		{"behind", "Ensure", nil, 2},
		{"behind", "Create", schema.ErrExists, 1},
		{"behind", "Migrate", nil, 2},
		{"foreign", "Ensure", schema.ErrForeign, missing},
		{"foreign", "Create", schema.ErrForeign, missing},
		{"foreign", "Migrate", schema.ErrForeign, missing},
	}
	for _, tt := range tests {
		t.Run(tt.state+"/"+tt.verb, func(t *testing.T) {
			ctx := context.Background()
			pool := setup(t)
			name := tenantName(t, pool)
			switch tt.state {
			case "current":
				require.NoError(t, newProvisioner(t, pool, schema.Config{Migrations: v2}).Ensure(ctx, name))
			case "behind":
				require.NoError(t, newProvisioner(t, pool, schema.Config{Migrations: v1}).Ensure(ctx, name))
			case "foreign":
				_, err := pool.Exec(ctx, `CREATE SCHEMA "`+name+`"`)
				require.NoError(t, err)
			}
			p := newProvisioner(t, pool, schema.Config{Migrations: v2})
			verbs := map[string]func(context.Context, string) error{"Ensure": p.Ensure, "Create": p.Create, "Migrate": p.Migrate}

			err := verbs[tt.verb](ctx, name)
			if tt.err == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.err)
			}
			got, err := p.Lookup(ctx, name)
			if tt.version == missing {
				require.ErrorIs(t, err, schema.ErrNotFound)
				if tt.state == "foreign" {
					assert.Empty(t, relations(t, pool, name), "nothing was created in it")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.version, got.Version)
		})
	}
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

	assert.False(t, isTenant(t, p, name))
	require.NoError(t, p.Ensure(ctx, name))
	assert.True(t, isTenant(t, p, name))
	assert.Equal(t, map[int]int{1: 2, 2: 2}, runs(t, pool, name), "every migration ran again in the new schema")
	assert.Equal(t, 2, count(t, pool, `SELECT count(*) FROM "`+name+`".tenant_migrations`))
}

// A verb for an existing tenant (Drop, Migrate, Suspend, Resume, SetMetadata, Adopt,
// and the reads Lookup and Info) given a name that is no tenant, in a database no
// tenant was ever made in, changes nothing: it makes no shared schema on the way to
// ErrNotFound.
func TestVerbsOnNoTenantMakeNothing(t *testing.T) {
	ctx := context.Background()
	pool := testdb.PoolFor(t, testdb.NewDatabase(t))
	namespaces := func() []string {
		rows, err := pool.Query(ctx, "SELECT nspname::text FROM pg_namespace ORDER BY 1")
		require.NoError(t, err)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return names
	}
	before := namespaces()
	p := newProvisioner(t, pool, schema.Config{Extensions: schema.CommonExtensions()})
	verbs := map[string]func(string) error{
		"Drop":        func(name string) error { return p.Drop(ctx, name) },
		"Migrate":     func(name string) error { return p.Migrate(ctx, name) },
		"Suspend":     func(name string) error { return p.Suspend(ctx, name) },
		"Resume":      func(name string) error { return p.Resume(ctx, name) },
		"SetMetadata": func(name string) error { return p.SetMetadata(ctx, name, map[string]string{"plan": "pro"}) },
		"Adopt":       func(name string) error { return p.Adopt(ctx, name) },
		"Lookup":      func(name string) error { _, err := p.Lookup(ctx, name); return err },
		"Info":        func(name string) error { _, err := p.Info(ctx, name); return err },
	}
	for verb, run := range verbs {
		for _, tt := range []struct {
			name string
			err  error
		}{
			{"nosuch", schema.ErrNotFound},
			{"public", schema.ErrInvalidName},
			{"Acme", schema.ErrInvalidName},
		} {
			assert.ErrorIs(t, run(tt.name), tt.err, "%s(%q)", verb, tt.name)
		}
	}
	assert.Equal(t, before, namespaces()) // List and ListInfo: TestListOnAFreshDatabase
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
	assert.False(t, isTenant(t, p, name), "schema, tables and version rows roll back together")
}

// Invalid names are refused before any SQL: on a closed pool every SQL attempt would
// fail with a pool error, so ErrInvalidName proves validation came first.
func TestInvalidNamesBuildNoSQL(t *testing.T) {
	ctx := context.Background()
	closed := testdb.Pool(t)
	closed.Close()
	p := newProvisioner(t, closed, schema.Config{Reserved: []string{"audit"}})
	calls := map[string]func(string) error{
		"Validate": func(n string) error { return p.Validate(n) },
		"Create":   func(n string) error { return p.Create(ctx, n) },
		"Ensure":   func(n string) error { return p.Ensure(ctx, n) },
		"Migrate":  func(n string) error { return p.Migrate(ctx, n) },
		"Drop":     func(n string) error { return p.Drop(ctx, n) },
		"Lookup":   func(n string) error { _, err := p.Lookup(ctx, n); return err },
		"Adopt":    func(n string) error { return p.Adopt(ctx, n) },
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
