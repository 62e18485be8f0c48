package schema_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// TestStock runs the stock's tests in one database of their own (spares are per
// database, and a database costs a checkpoint to drop), each starting empty.
func TestStock(t *testing.T) {
	pool := testdb.PoolFor(t, testdb.NewDatabase(t))
	for _, tc := range []struct {
		name string
		test func(*testing.T, *pgxpool.Pool)
	}{
		{"FromStockIsTheSlowPath", testFromStockIsTheSlowPath},
		{"ConcurrentSignups", testConcurrentSignups},
		{"StaleSpares", testStaleSpares},
		{"SparesAreNoTenants", testSparesAreNoTenants},
		{"FillStockTrims", testFillStockTrims},
		{"Unsafe", testStockUnsafe},
		{"CloseStopsTheRefill", testCloseStopsTheRefill},
		{"SignupLatency", testSignupLatency},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { emptyDatabase(t, pool) })
			tc.test(t, pool)
		})
	}
}

// A tenant from stock is the tenant the slow path makes: same tables, columns,
// defaults, indexes, constraints, sequences and their owners, views, functions,
// triggers, migrations, registration and marker; and it works (the defaults' sequences
// follow the rename).
func testFromStockIsTheSlowPath(t *testing.T, pool *pgxpool.Pool) {
	ctx := context.Background()
	fast := stockProvisioner(t, pool, appMigrations, 1)
	slow := stockProvisioner(t, pool, appMigrations, 0)
	require.NoError(t, fast.FillStock(ctx))
	stock := spares(t, pool)
	require.Len(t, stock, 1)

	require.NoError(t, slow.Create(ctx, "slow_one"))
	require.NoError(t, fast.Create(ctx, "fast_one"))
	fastTenant, err := fast.Lookup(ctx, "fast_one")
	require.NoError(t, err)
	assert.Contains(t, stock, fastTenant.OID, "it is the spare, renamed")
	assert.Equal(t, int64(2), fastTenant.Version)
	assert.True(t, hasMarker(t, pool, "fast_one", 2), "the marker carries its OID and version")
	assert.True(t, hasMarker(t, pool, "slow_one", 2))

	assert.ElementsMatch(t, describe(t, pool, "slow_one"), describe(t, pool, "fast_one"))
	for _, name := range []string{"slow_one", "fast_one"} {
		in, err := fast.Info(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, schema.Active, in.State)
		assert.Equal(t, int64(2), in.Version)
		assert.JSONEq(t, `{}`, string(in.Metadata))
		assert.WithinDuration(t, time.Now(), in.Created, time.Minute, "created at sign-up, not when the spare was made")
	}
	assert.Equal(t, usage(t, pool, "slow_one"), usage(t, pool, "fast_one"))
	names, err := fast.List(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"fast_one", "slow_one"}, names)

	fast.WaitStock()
	assert.Len(t, spares(t, pool), 1, "refilled")
}

// usage writes and reads through everything the migrations made, in the tenant's
// search path, and returns what it read.
func usage(t *testing.T, pool *pgxpool.Pool, name string) string {
	t.Helper()
	var out string
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		ctx := context.Background()
		_, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", schema.SearchPath(name))
		if err == nil {
			_, err = tx.Exec(ctx, `INSERT INTO accounts (email) VALUES ('a@example.org'), ('b@example.org');
				INSERT INTO projects (account_id, name, budget) VALUES (1, 'one', 10), (1, 'two', 20);
				INSERT INTO invoices (project_id, lines) VALUES (1, '[{"amount": 5}]'), (2, '[{"amount": 7}]');
				UPDATE accounts SET email = 'c@example.org' WHERE id = 2`)
		}
		if err == nil {
			err = tx.QueryRow(ctx, `SELECT (SELECT string_agg(id||name||total, ',' ORDER BY id) FROM project_totals)
				||' '||(SELECT string_agg(number::text, ',' ORDER BY number) FROM invoices)
				||' '||project_count(1)||' '||(SELECT settings FROM accounts WHERE id = 2)`).Scan(&out)
		}
		return err
	})
	require.NoError(t, err, name)
	return out
}

// Concurrent sign-ups each get a spare of their own or the slow path; all succeed,
// every tenant has its name, and the stock is refilled.
func testConcurrentSignups(t *testing.T, pool *pgxpool.Pool) {
	ctx := context.Background()
	p := stockProvisioner(t, pool, appMigrations, 3)
	require.NoError(t, p.FillStock(ctx))
	before := spares(t, pool)
	require.Len(t, before, 3)

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { assert.NoError(t, p.Create(ctx, fmt.Sprintf("signup-%d", i))) })
	}
	wg.Wait()
	oids := map[uint32]string{}
	for i := range 8 {
		name := fmt.Sprintf("signup-%d", i)
		tn, err := p.Lookup(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, tn.OID, oidOf(t, pool, name), "registry and schema agree")
		assert.NotContains(t, oids, tn.OID, "%s has a schema of its own", name)
		oids[tn.OID] = name
		assert.True(t, hasMarker(t, pool, name, 2), name)
	}
	for oid := range before {
		assert.Contains(t, oids, oid, "every spare was taken, by one sign-up")
	}
	p.WaitStock()
	assert.Len(t, spares(t, pool), 3, "refilled")
	names, err := p.List(ctx, "signup")
	require.NoError(t, err)
	assert.Len(t, names, 8)
}

// After a deploy adds a migration, spares at the old version are never handed out:
// the sign-up runs the migrations, and the refill brings the old spares up to date.
// The old release, still running, leaves the new spares alone.
func testStaleSpares(t *testing.T, pool *pgxpool.Pool) {
	ctx := context.Background()
	old := stockProvisioner(t, pool, appMigrations, 2)
	require.NoError(t, old.FillStock(ctx))
	stale := spares(t, pool)

	deployed := stockProvisioner(t, pool, withApp(map[string]string{"003_notes.sql": "ALTER TABLE projects ADD COLUMN notes text"}), 2)
	require.NoError(t, deployed.Create(ctx, "after-deploy"))
	tn, err := deployed.Lookup(ctx, "after-deploy")
	require.NoError(t, err)
	assert.NotContains(t, stale, tn.OID)
	assert.Equal(t, int64(3), tn.Version)
	assert.Equal(t, 1, count(t, pool, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = 'after-deploy' AND table_name = 'projects' AND column_name = 'notes'`))

	deployed.WaitStock() // the miss asked for a refill: the old spares are migrated
	upgraded := spares(t, pool)
	assert.Equal(t, slices.Sorted(maps.Keys(stale)), slices.Sorted(maps.Keys(upgraded)), "the same spares")
	for _, s := range upgraded {
		assert.Equal(t, int64(3), s.Version)
		assert.True(t, hasMarker(t, pool, s.Name, 3))
	}
	require.NoError(t, old.Create(ctx, "old-release"))
	tn, err = old.Lookup(ctx, "old-release")
	require.NoError(t, err)
	assert.NotContains(t, upgraded, tn.OID, "the old release made its own")
	old.WaitStock()
	assert.Equal(t, upgraded, spares(t, pool), "and left the new spares alone")

	require.NoError(t, deployed.Create(ctx, "from-stock"))
	tn, err = deployed.Lookup(ctx, "from-stock")
	require.NoError(t, err)
	assert.Contains(t, upgraded, tn.OID)
	assert.ElementsMatch(t, describe(t, pool, "after-deploy"), describe(t, pool, "from-stock"))

	deployed.WaitStock()
	upgraded = spares(t, pool)
	broken := stockProvisioner(t, pool, withApp(map[string]string{"004_broken.sql": "SELECT 1/0"}), 2)
	require.ErrorIs(t, broken.FillStock(ctx), schema.ErrMigrationFailed)
	assert.Equal(t, upgraded, spares(t, pool), "a spare that cannot be migrated stays as it was, and is not handed out")
}

// A spare's name is refused by Validate and every verb; spares are never listed,
// served, adoptable, migrated or visited by a run over the tenants.
func testSparesAreNoTenants(t *testing.T, pool *pgxpool.Pool) {
	ctx := context.Background()
	p := stockProvisioner(t, pool, appMigrations, 1)
	require.NoError(t, p.Create(ctx, "acme"))
	require.NoError(t, p.FillStock(ctx))
	var sp spare
	for _, s := range spares(t, pool) {
		sp = s
	}
	require.NotEmpty(t, sp.Name)
	assert.ErrorIs(t, schema.Validate(sp.Name), schema.ErrDoubleDash)

	verbs := map[string]func(string) error{
		"Create": func(n string) error { return p.Create(ctx, n) }, "Ensure": func(n string) error { return p.Ensure(ctx, n) },
		"Migrate": func(n string) error { return p.Migrate(ctx, n) }, "Drop": func(n string) error { return p.Drop(ctx, n) },
		"Adopt": func(n string) error { return p.Adopt(ctx, n) }, "Suspend": func(n string) error { return p.Suspend(ctx, n) },
		"Resume": func(n string) error { return p.Resume(ctx, n) }, "SetMetadata": func(n string) error { return p.SetMetadata(ctx, n, map[string]int{"a": 1}) },
		"Lookup": func(n string) error { _, err := p.Lookup(ctx, n); return err },
		"Info":   func(n string) error { _, err := p.Info(ctx, n); return err },
	}
	for verb, call := range verbs {
		assert.ErrorIs(t, call(sp.Name), schema.ErrInvalidName, verb)
	}
	assert.Equal(t, map[uint32]spare{sp.OID: sp}, spares(t, pool), "untouched")

	names, err := p.List(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"acme"}, names)
	adoptable, err := p.Adoptable(ctx)
	require.NoError(t, err)
	assert.Empty(t, adoptable)
	res, err := p.MigrateAll(ctx, schema.RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Total)
	var seen []string
	_, err = p.ForEach(ctx, schema.RunOptions{Parallel: 1}, func(_ context.Context, n string) error { seen = append(seen, n); return nil })
	require.NoError(t, err)
	assert.Equal(t, []string{"acme"}, seen)
}

// FillStock keeps exactly Config.Spares: it drops what is beyond (all of them with 0).
func testFillStockTrims(t *testing.T, pool *pgxpool.Pool) {
	ctx := context.Background()
	p := stockProvisioner(t, pool, appMigrations, 3)
	require.NoError(t, p.FillStock(ctx))
	require.NoError(t, p.FillStock(ctx), "a full stock needs nothing")
	assert.Len(t, spares(t, pool), 3)
	for _, n := range []int{1, 0} {
		require.NoError(t, stockProvisioner(t, pool, appMigrations, n).FillStock(ctx))
		assert.Len(t, spares(t, pool), n)
	}
	assert.Zero(t, count(t, pool, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'spare--%'`), "their schemas are gone")
}

// Migrations that write the schema's own name into it (here SET search_path FROM
// CURRENT) make spares unsafe: none is kept, and sign-ups take the slow path.
func testStockUnsafe(t *testing.T, pool *pgxpool.Pool) {
	ctx := context.Background()
	p := stockProvisioner(t, pool, withApp(map[string]string{"003_secure.sql": `CREATE FUNCTION secure() RETURNS bigint
		LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS 'SELECT count(*) FROM accounts'`}), 2)
	err := p.FillStock(ctx)
	require.ErrorIs(t, err, schema.ErrStockUnsafe)
	assert.Contains(t, err.Error(), "function secure()")
	assert.Empty(t, spares(t, pool))
	require.NoError(t, p.Create(ctx, "acme"))
	p.WaitStock()
	assert.Empty(t, spares(t, pool))
}

// Close stops a refill under way, which rolls back, and returns promptly.
func testCloseStopsTheRefill(t *testing.T, pool *pgxpool.Pool) {
	ctx := context.Background()
	p := stockProvisioner(t, pool, withApp(map[string]string{"003_slow.sql": "SELECT pg_sleep(0.5)"}), 2)
	require.NoError(t, p.Create(ctx, "acme")) // a miss: the refill starts
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	p.Close()
	assert.Less(t, time.Since(start), 400*time.Millisecond)
	assert.Empty(t, spares(t, pool))
	assert.Zero(t, count(t, pool, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'spare--%'`))
	require.NoError(t, p.Create(ctx, "after-close"), "provisioning goes on")
	p.Close()
}
