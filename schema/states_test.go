package schema_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// A suspended tenant keeps its schema and data, is listed and migrated, but Lookup
// refuses it until it is resumed; provisioning it does not resume it.
func TestSuspendAndResume(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	require.NoError(t, p.Ensure(ctx, name))
	_, err := pool.Exec(ctx, `INSERT INTO "`+name+`".documents (title) VALUES ('a=>kept')`)
	require.NoError(t, err)

	require.NoError(t, p.Suspend(ctx, name))
	require.NoError(t, p.Suspend(ctx, name), "suspending twice changes nothing")
	_, err = p.Lookup(ctx, name)
	assert.ErrorIs(t, err, schema.ErrSuspended)
	assert.NotErrorIs(t, err, schema.ErrNotFound, "callers tell a suspended tenant from a missing one")
	require.NoError(t, p.Ensure(ctx, name), "a suspended tenant is still a tenant")
	_, err = p.Lookup(ctx, name)
	assert.ErrorIs(t, err, schema.ErrSuspended, "Ensure does not resume it")
	assert.ErrorIs(t, p.Create(ctx, name), schema.ErrExists)
	names, err := p.List(ctx, "")
	require.NoError(t, err)
	assert.Contains(t, names, name)
	in, err := p.Info(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, schema.Suspended, in.State)
	assert.Equal(t, 1, count(t, pool, `SELECT count(*) FROM "`+name+`".documents WHERE title::text = '"a"=>"kept"'`), "its data is kept")

	require.NoError(t, p.Resume(ctx, name))
	got, err := p.Lookup(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, int64(2), got.Version)

	missing := tenantName(t, pool)
	assert.ErrorIs(t, p.Suspend(ctx, missing), schema.ErrNotFound)
	assert.ErrorIs(t, p.Resume(ctx, missing), schema.ErrNotFound)
	assert.ErrorIs(t, p.Suspend(ctx, "Bad Name"), schema.ErrInvalidName)
	_, err = pool.Exec(ctx, `CREATE SCHEMA "`+missing+`"`)
	require.NoError(t, err)
	assert.ErrorIs(t, p.Suspend(ctx, missing), schema.ErrForeign, "a schema that is not a tenant is never registered by a suspend")
	assert.Zero(t, count(t, pool, `SELECT count(*) FROM tenant_registry.tenants WHERE name = $1`, missing))
}

// Metadata is the application's JSON object, merged key by key.
func TestMetadata(t *testing.T) {
	ctx := context.Background()
	pool := setup(t)
	p := newProvisioner(t, pool, schema.Config{})
	name := tenantName(t, pool)
	require.NoError(t, p.Ensure(ctx, name))

	in, err := p.Info(ctx, name)
	require.NoError(t, err)
	assert.JSONEq(t, `{}`, string(in.Metadata))
	assert.Equal(t, schema.Active, in.State)
	assert.WithinDuration(t, time.Now(), in.Created, time.Hour)

	require.NoError(t, p.SetMetadata(ctx, name, map[string]any{"plan": "pro", "seats": 5}))
	require.NoError(t, p.SetMetadata(ctx, name, struct {
		Plan string `json:"plan"`
	}{"enterprise"}))
	in, err = p.Info(ctx, name)
	require.NoError(t, err)
	assert.JSONEq(t, `{"plan": "enterprise", "seats": 5}`, string(in.Metadata))

	for _, bad := range []any{[]int{1}, "text", 3, nil} {
		assert.Error(t, p.SetMetadata(ctx, name, bad), "%v is not an object", bad)
	}
	assert.Error(t, p.SetMetadata(ctx, name, func() {}))
	in, err = p.Info(ctx, name)
	require.NoError(t, err)
	assert.JSONEq(t, `{"plan": "enterprise", "seats": 5}`, string(in.Metadata), "a refused change changes nothing")

	assert.ErrorIs(t, p.SetMetadata(ctx, tenantName(t, pool), map[string]any{}), schema.ErrNotFound)
	_, err = p.Info(ctx, tenantName(t, pool))
	assert.ErrorIs(t, err, schema.ErrNotFound)

	infos, err := p.ListInfo(ctx, "")
	require.NoError(t, err)
	var found bool
	for _, in := range infos {
		if in.Name == name {
			found = true
			var meta map[string]any
			require.NoError(t, json.Unmarshal(in.Metadata, &meta))
			assert.Equal(t, "enterprise", meta["plan"])
		}
	}
	assert.True(t, found)
}

// A registry an earlier release made (no state, no metadata) is upgraded in place the
// first time it is read: its tenants are active and served.
func TestRegistryFromAnEarlierRelease(t *testing.T) {
	ctx := context.Background()
	pool := testdb.PoolFor(t, testdb.NewDatabase(t))
	_, err := pool.Exec(ctx, `CREATE SCHEMA tenant_registry;
		CREATE TABLE tenant_registry.tenants (name text PRIMARY KEY, schema_oid oid NOT NULL UNIQUE,
			version bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now());
		CREATE SCHEMA old; CREATE TABLE old.tenant_migrations (version bigint PRIMARY KEY, name text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now());
		CREATE VIEW old.tenant_version_0_1 AS SELECT 0::bigint AS version;
		INSERT INTO tenant_registry.tenants (name, schema_oid) SELECT 'old', oid FROM pg_namespace WHERE nspname = 'old'`)
	require.NoError(t, err)
	p := newProvisioner(t, pool, schema.Config{Migrations: fstestEmpty(), Extensions: []string{}})

	got, err := p.Lookup(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, "old", got.Name)
	in, err := p.Info(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, schema.Active, in.State)
	assert.JSONEq(t, `{}`, string(in.Metadata))
	require.NoError(t, p.Suspend(ctx, "old"))
}

// On a database where no tenant was ever made, listing finds none and makes nothing.
func TestListOnAFreshDatabase(t *testing.T) {
	ctx := context.Background()
	pool := testdb.PoolFor(t, testdb.NewDatabase(t))
	p := newProvisioner(t, pool, schema.Config{})
	names, err := p.List(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, names)
	infos, err := p.ListInfo(ctx, "ns")
	require.NoError(t, err)
	assert.Empty(t, infos)
	assert.Zero(t, count(t, pool, `SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_registry'`))
}
