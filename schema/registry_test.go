package schema_test

import (
	"context"
	"fmt"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/schema"
)

// withMigration returns testMigrations plus one more file.
func withMigration(file, sql string) fstest.MapFS {
	fs := fstest.MapFS{file: {Data: []byte(sql)}}
	for k, v := range testMigrations {
		fs[k] = v
	}
	return fs
}

// relations lists the relations in a schema, for checking that nothing was created.
func relations(t *testing.T, pool *pgxpool.Pool, name string) []string {
	t.Helper()
	var got []string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT coalesce(array_agg(relname::text ORDER BY relname), '{}')
		FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)`, name).Scan(&got))
	return got
}

// A schema this package did not create is never a tenant, whatever its name: it is
// not served (Lookup), listed, migrated, taken over or dropped.
func TestForeignSchemasAreNeverTenants(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	_, err := pool.Exec(ctx, `CREATE SCHEMA "`+name+`"; CREATE TABLE "`+name+`".audit_log (line text);
		INSERT INTO "`+name+`".audit_log VALUES ('kept')`)
	require.NoError(t, err)

	_, err = p.Lookup(ctx, name)
	assert.ErrorIs(t, err, schema.ErrNotFound)
	assert.ErrorIs(t, p.Ensure(ctx, name), schema.ErrForeign)
	assert.ErrorIs(t, p.Create(ctx, name), schema.ErrForeign)
	assert.ErrorIs(t, p.Migrate(ctx, name), schema.ErrForeign)
	assert.ErrorIs(t, p.Drop(ctx, name), schema.ErrForeign)
	assert.ErrorIs(t, p.Adopt(ctx, name), schema.ErrForeign, "no tenant_migrations: not one of ours")
	names, err := p.List(ctx, "")
	require.NoError(t, err)
	assert.NotContains(t, names, name)

	assert.Equal(t, []string{"audit_log"}, relations(t, pool, name), "nothing was created in it")
	assert.Empty(t, runs(t, pool, name), "no migration ran in it")
	assert.Equal(t, 1, count(t, pool, `SELECT count(*) FROM "`+name+`".audit_log WHERE line = 'kept'`))
}

// A tenant whose schema was dropped by hand and made again by someone else under the
// same name is not a tenant: the registration is for the schema it created.
func TestRegistrationIsForTheSchemaCreated(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	require.NoError(t, p.Ensure(ctx, name))
	_, err := pool.Exec(ctx, `DROP SCHEMA "`+name+`" CASCADE; CREATE SCHEMA "`+name+`"`)
	require.NoError(t, err)

	assert.False(t, isTenant(t, p, name))
	assert.ErrorIs(t, p.Ensure(ctx, name), schema.ErrForeign)
	assert.ErrorIs(t, p.Drop(ctx, name), schema.ErrForeign)
	assert.Empty(t, relations(t, pool, name))

	_, err = pool.Exec(ctx, `DROP SCHEMA "`+name+`"`)
	require.NoError(t, err)
	assert.ErrorIs(t, p.Drop(ctx, name), schema.ErrNotFound, "dropped by hand: missing, and its registration goes")
	assert.Zero(t, count(t, pool, `SELECT count(*) FROM tenant_registry.tenants WHERE name = $1`, name))
}

// Schemas made by earlier releases (a tenant_migrations table, no registration) are
// listed by Adoptable and become tenants through Adopt, keeping their version.
func TestAdoptLegacyTenant(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	// What the previous release left: the schema, its tables, its version rows.
	_, err := pool.Exec(ctx, `CREATE SCHEMA "`+name+`";
		CREATE TABLE "`+name+`".tenant_migrations (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE "`+name+`".documents (id serial PRIMARY KEY, title extensions.hstore NOT NULL);
		INSERT INTO "`+name+`".tenant_migrations (version, name) VALUES (1, '001_documents.sql'), (2, '002_index.sql')`)
	require.NoError(t, err)
	require.NoError(t, p.EnsureShared(ctx))

	assert.False(t, isTenant(t, p, name), "not a tenant until adopted")
	adoptable, err := p.Adoptable(ctx)
	require.NoError(t, err)
	assert.Contains(t, adoptable, name)

	require.NoError(t, p.Adopt(ctx, name))
	tenant, err := p.Lookup(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, schema.Tenant{Name: name, OID: oidOf(t, pool, name), Version: 2}, tenant)
	assert.Contains(t, relations(t, pool, name), schema.VersionMarker(tenant)[1])
	adoptable, err = p.Adoptable(ctx)
	require.NoError(t, err)
	assert.NotContains(t, adoptable, name)
	require.NoError(t, p.Adopt(ctx, name), "adopting a tenant again does nothing")

	p3 := newProvisioner(t, pool, schema.Config{Migrations: withMigration("003_more.sql", "ALTER TABLE documents ADD COLUMN body text")})
	require.NoError(t, p3.Migrate(ctx, name))
	tenant, err = p3.Lookup(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, int64(3), tenant.Version)

	assert.ErrorIs(t, p.Adopt(ctx, "nosuch_schema"), schema.ErrNotFound)
}

// marker is the name of a tenant's version marker view.
func marker(t *testing.T, p *schema.Provisioner, name string) string {
	t.Helper()
	tenant, err := p.Lookup(context.Background(), name)
	require.NoError(t, err)
	return schema.VersionMarker(tenant)[1]
}

func oidOf(t *testing.T, pool *pgxpool.Pool, name string) uint32 {
	t.Helper()
	var oid uint32
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT oid FROM pg_namespace WHERE nspname = $1", name).Scan(&oid))
	return oid
}

// The version marker view carries the tenant's schema OID and migration version in its
// name and moves with every migration, with the registry row.
func TestVersionMarkerFollowsMigrations(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	require.NoError(t, p.Create(ctx, name))
	oid := fmt.Sprint(oidOf(t, pool, name))
	assert.Equal(t, []string{"documents", "documents_id_gist", "documents_id_seq", "documents_pkey", "tenant_migrations",
		"tenant_migrations_pkey", "tenant_version_2_" + oid}, relations(t, pool, name))

	p3 := newProvisioner(t, pool, schema.Config{Migrations: withMigration("003_more.sql", "ALTER TABLE documents ADD COLUMN body text")})
	require.NoError(t, p3.Migrate(ctx, name))
	rels := relations(t, pool, name)
	assert.Contains(t, rels, "tenant_version_3_"+oid)
	assert.NotContains(t, rels, "tenant_version_2_"+oid)
	assert.Equal(t, 3, count(t, pool, `SELECT version FROM "`+name+`".tenant_version_3_`+oid))
	assert.Equal(t, 3, count(t, pool, `SELECT version FROM tenant_registry.tenants WHERE name = $1`, name))

	_, err := pool.Exec(ctx, `DROP VIEW "`+name+`".tenant_version_3_`+oid)
	require.NoError(t, err)
	require.NoError(t, p3.Migrate(ctx, name), "a lost marker is made again")
	assert.Contains(t, relations(t, pool, name), "tenant_version_3_"+oid)
}

// A tenant dropped and provisioned again under the same name, at the same version,
// has another marker: what was cached for the old schema is not taken for the new.
func TestVersionMarkerNamesTheSchema(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	require.NoError(t, p.Ensure(ctx, name))
	before := marker(t, p, name)
	require.NoError(t, p.Drop(ctx, name))
	require.NoError(t, p.Ensure(ctx, name))
	assert.NotEqual(t, before, marker(t, p, name))
}

// A migration older than one a tenant already has is refused, and nothing is applied: the
// version must say which tables a tenant has.
func TestMigrationOutOfOrder(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	name := tenantName(t, pool)
	first := fstest.MapFS{"001_a.sql": {Data: []byte("CREATE TABLE a (id int)")}, "003_c.sql": {Data: []byte("CREATE TABLE c (id int)")}}
	require.NoError(t, newProvisioner(t, pool, schema.Config{Migrations: first}).Ensure(ctx, name))

	first["002_b.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE b (id int)")}
	err := newProvisioner(t, pool, schema.Config{Migrations: first}).Migrate(ctx, name)
	require.ErrorIs(t, err, schema.ErrMigrationOrder)
	assert.Contains(t, err.Error(), "002_b.sql")
	assert.NotContains(t, relations(t, pool, name), "b")
}

// A migration takes the version marker exclusively: it waits for the tenant's
// transactions in flight (which hold it shared) and they never see it half done. A
// migrate with nothing to apply takes no lock and never waits.
func TestMigrationWaitsForRequestsInFlight(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	require.NoError(t, p.Ensure(ctx, name))

	request, err := pool.Begin(ctx) // what a request transaction holds
	require.NoError(t, err)
	defer func() { _ = request.Rollback(ctx) }()
	tenant, err := p.Lookup(ctx, name)
	require.NoError(t, err)
	_, err = request.Exec(ctx, `LOCK TABLE `+schema.VersionMarker(tenant).Sanitize()+` IN ACCESS SHARE MODE`)
	require.NoError(t, err)

	require.NoError(t, p.Migrate(ctx, name), "nothing pending: no wait")

	p3 := newProvisioner(t, pool, schema.Config{Migrations: withMigration("003_more.sql", "ALTER TABLE documents ADD COLUMN body text")})
	done := make(chan error, 1)
	go func() { done <- p3.Migrate(ctx, name) }()
	require.Eventually(t, func() bool {
		return count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%ACCESS EXCLUSIVE%'`) == 1
	}, 10*time.Second, 10*time.Millisecond, "the migration waits for the request")
	select {
	case err := <-done:
		t.Fatalf("the migration did not wait: %v", err)
	default:
	}
	require.NoError(t, request.Commit(ctx))
	require.NoError(t, <-done)
	assert.Equal(t, 3, count(t, pool, `SELECT version FROM tenant_registry.tenants WHERE name = $1`, name))
}

// A migration waits for the tenant's requests in flight at most LockTimeout, then gives
// up with ErrLocked, applying nothing: the tenant's new requests, queued behind it,
// go on.
func TestMigrationGivesUpOnABusyTenant(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	require.NoError(t, p.Ensure(ctx, name))
	tenant, err := p.Lookup(ctx, name)
	require.NoError(t, err)

	request, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = request.Rollback(ctx) }()
	_, err = request.Exec(ctx, `LOCK TABLE `+schema.VersionMarker(tenant).Sanitize()+` IN ACCESS SHARE MODE`)
	require.NoError(t, err)

	p3 := newProvisioner(t, pool, schema.Config{LockTimeout: 200 * time.Millisecond,
		Migrations: withMigration("003_more.sql", "ALTER TABLE documents ADD COLUMN body text")})
	start := time.Now()
	err = p3.Migrate(ctx, name)
	require.ErrorIs(t, err, schema.ErrLocked)
	assert.Less(t, time.Since(start), 5*time.Second)
	after, err := p3.Lookup(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, int64(2), after.Version, "nothing applied")
	assert.Zero(t, count(t, pool, `SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'body'`, name))
}
