package schema_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// addColumn is migration 3 for testMigrations' tenants: it fails in a tenant that
// already has the column, and logs its run like the others.
var addColumn = withMigration("003_add_column.sql", `ALTER TABLE documents ADD COLUMN note text;
INSERT INTO public.migration_log VALUES (current_schema(), 3);`)

// fleet makes a database of its own (MigrateAll sees every tenant) with n tenants
// "fleet-00".."fleet-<n-1>" at testMigrations' version 2.
func fleet(t *testing.T, n int) (*pgxpool.Pool, []string) {
	t.Helper()
	ctx := context.Background()
	pool := testdb.PoolFor(t, testdb.NewDatabase(t))
	_, err := pool.Exec(ctx, `CREATE TABLE public.migration_log (schema_name text NOT NULL, version int NOT NULL)`)
	require.NoError(t, err)
	p := newProvisioner(t, pool, schema.Config{})
	names := make([]string, n)
	var g errgroup.Group
	g.SetLimit(4)
	for i := range names {
		names[i] = fmt.Sprintf("fleet-%02d", i)
		g.Go(func() error { return p.Create(ctx, names[i]) })
	}
	require.NoError(t, g.Wait())
	return pool, names
}

// versions returns each tenant's registered version.
func versions(t *testing.T, pool *pgxpool.Pool) map[string]int64 {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT name, version FROM tenant_registry.tenants`)
	require.NoError(t, err)
	out := map[string]int64{}
	var name string
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&name, &v}, func() error { out[name] = v; return nil })
	require.NoError(t, err)
	return out
}

// A run with nothing to do plans with one query and sends nothing to any tenant; a
// run with work migrates every tenant once, in parallel, and reports progress.
func TestMigrateAll(t *testing.T) {
	ctx := context.Background()
	pool, names := fleet(t, 12)
	queries := &statementCounter{}
	cfg := pool.Config()
	cfg.ConnConfig.Tracer = queries
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(traced.Close)

	p := newProvisioner(t, traced, schema.Config{})
	_, err = p.MigrateAll(ctx, schema.RunOptions{}) // makes sure of the shared schemas
	require.NoError(t, err)
	queries.n.Store(0)
	res, err := p.MigrateAll(ctx, schema.RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), queries.n.Load(), "one query plans the run")
	assert.Equal(t, schema.Progress{Total: 12, Current: 12, Started: res.Started}, res.Progress)

	p3 := newProvisioner(t, traced, schema.Config{Migrations: addColumn})
	var reports []schema.Progress
	res, err = p3.MigrateAll(ctx, schema.RunOptions{Parallel: 3, Progress: func(pr schema.Progress) { reports = append(reports, pr) }})
	require.NoError(t, err)
	assert.Equal(t, 12, res.Changed)
	assert.Zero(t, res.Pending())
	require.Len(t, reports, 13, "one report at the start, one per tenant")
	assert.Zero(t, reports[0].Done())
	for i, r := range reports[1:] {
		assert.Equal(t, i+1, r.Done())
		assert.Contains(t, names, r.Tenant)
		assert.NoError(t, r.Err)
	}
	for _, name := range names {
		assert.Equal(t, map[int]int{1: 1, 2: 1, 3: 1}, runs(t, pool, name), name)
		assert.Equal(t, 1, count(t, pool, `SELECT count(*) FROM pg_class WHERE relname = 'tenant_version_3_'||$1::oid
			AND relnamespace = $1::oid`, oidOf(t, pool, name)), "the marker follows: %s", name)
	}
	for name, v := range versions(t, pool) {
		assert.Equal(t, int64(3), v, name)
	}

	queries.n.Store(0)
	res, err = p3.MigrateAll(ctx, schema.RunOptions{Namespace: "fleet"})
	require.NoError(t, err)
	assert.Equal(t, 12, res.Current)
	assert.Equal(t, int64(1), queries.n.Load())
}

// Per-tenant SQL is never prepared: migrating many tenants leaves the connection's
// statement cache as it was.
func TestMigrateAllKeepsNoStatementPerTenant(t *testing.T) {
	ctx := context.Background()
	pool, _ := fleet(t, 10)
	cfg := pool.Config()
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(one.Close)

	_, err = newProvisioner(t, one, schema.Config{Migrations: addColumn}).MigrateAll(ctx, schema.RunOptions{})
	require.NoError(t, err)
	assert.LessOrEqual(t, count(t, one, `SELECT count(*) FROM pg_prepared_statements`), 3,
		"no statement per tenant on the one connection")
}

// A failing tenant is reported while the others are migrated; a rerun does only it.
func TestMigrateAllFailureAndRerun(t *testing.T) {
	ctx := context.Background()
	pool, names := fleet(t, 8)
	bad := names[5]
	_, err := pool.Exec(ctx, `ALTER TABLE "`+bad+`".documents ADD COLUMN note text`)
	require.NoError(t, err)
	p := newProvisioner(t, pool, schema.Config{Migrations: addColumn})

	res, err := p.MigrateAll(ctx, schema.RunOptions{Parallel: 2})
	require.Error(t, err)
	assert.ErrorIs(t, err, schema.ErrMigrationFailed)
	var runErr *schema.RunError
	require.ErrorAs(t, err, &runErr)
	assert.Equal(t, res, runErr.Result)
	assert.Equal(t, 7, res.Changed)
	assert.Equal(t, 1, res.Failed)
	assert.Contains(t, res.Failures, bad)
	assert.Contains(t, err.Error(), "1 failed, 0 locked (first: "+bad)
	assert.Equal(t, map[int]int{1: 1, 2: 1}, runs(t, pool, bad), "its migration rolled back")
	assert.Equal(t, int64(2), versions(t, pool)[bad])

	_, err = pool.Exec(ctx, `ALTER TABLE "`+bad+`".documents DROP COLUMN note`)
	require.NoError(t, err)
	res, err = p.MigrateAll(ctx, schema.RunOptions{Parallel: 2})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Changed, "only what was left")
	assert.Equal(t, 7, res.Current)
	for _, name := range names {
		assert.Equal(t, 1, runs(t, pool, name)[3], name)
	}
}

// Interrupted, a run stops taking tenants and reports those not done as pending, not
// failed; the next run does exactly those.
func TestMigrateAllInterrupted(t *testing.T) {
	ctx := context.Background()
	pool, names := fleet(t, 12)
	p := newProvisioner(t, pool, schema.Config{Migrations: addColumn})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := p.MigrateAll(runCtx, schema.RunOptions{Parallel: 2, Progress: func(pr schema.Progress) {
		if pr.Done() == 4 {
			cancel() // Ctrl-C
		}
	}})
	require.ErrorIs(t, err, schema.ErrInterrupted)
	assert.True(t, res.Interrupted)
	assert.Zero(t, res.Failed)
	assert.Positive(t, res.Pending())
	assert.Contains(t, err.Error(), fmt.Sprintf("interrupted, %d pending", res.Pending()))
	migrated := 0
	for _, name := range names {
		migrated += runs(t, pool, name)[3]
	}
	// A tenant whose COMMIT raced the interrupt may have committed: it is reported
	// pending, and the next run finds it current.
	assert.GreaterOrEqual(t, migrated, res.Changed, "what it reported changed did change")
	assert.Zero(t, res.Failed)

	again, err := p.MigrateAll(ctx, schema.RunOptions{Parallel: 2})
	require.NoError(t, err)
	assert.Equal(t, 12, again.Total)
	assert.LessOrEqual(t, again.Changed, 12-res.Changed, "only what was left")
	assert.Equal(t, 12, again.Changed+again.Current)
	for _, name := range names {
		assert.Equal(t, 1, runs(t, pool, name)[3], name)
	}
}

// A tenant whose requests hold it beyond the lock timeout is skipped and reported;
// the others are migrated.
func TestMigrateAllLockTimeout(t *testing.T) {
	ctx := context.Background()
	pool, names := fleet(t, 4)
	busy := names[1]
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `LOCK TABLE "`+busy+`".tenant_version_2_`+fmt.Sprint(oidOf(t, pool, busy))+` IN ACCESS SHARE MODE`)
	require.NoError(t, err)

	p := newProvisioner(t, pool, schema.Config{Migrations: addColumn, LockTimeout: 100 * time.Millisecond})
	res, err := p.MigrateAll(ctx, schema.RunOptions{Parallel: 2})
	require.ErrorIs(t, err, schema.ErrLocked)
	assert.Equal(t, 1, res.Locked)
	assert.Equal(t, 3, res.Changed)
	assert.Contains(t, res.Failures, busy)
	assert.Zero(t, runs(t, pool, busy)[3])
}

// A canary run migrates the first tenants one at a time and stops at the first
// failure, before any other tenant is touched.
func TestMigrateAllCanary(t *testing.T) {
	ctx := context.Background()
	pool, names := fleet(t, 8)
	_, err := pool.Exec(ctx, `ALTER TABLE "`+names[1]+`".documents ADD COLUMN note text`)
	require.NoError(t, err)
	p := newProvisioner(t, pool, schema.Config{Migrations: addColumn})

	res, err := p.MigrateAll(ctx, schema.RunOptions{Canary: 3, Parallel: 4})
	require.ErrorIs(t, err, schema.ErrCanaryFailed)
	assert.True(t, res.CanaryFailed)
	assert.Equal(t, 1, res.Changed, "the one before the failure")
	assert.Equal(t, 1, res.Failed)
	assert.Equal(t, 6, res.Pending())
	assert.Contains(t, err.Error(), "canary failed, 6 pending")
	for _, name := range names[2:] {
		assert.Zero(t, runs(t, pool, name)[3], "%s was not touched", name)
	}

	_, err = pool.Exec(ctx, `ALTER TABLE "`+names[1]+`".documents DROP COLUMN note`)
	require.NoError(t, err)
	res, err = p.MigrateAll(ctx, schema.RunOptions{Canary: 3})
	require.NoError(t, err)
	assert.Equal(t, 7, res.Changed)
}

// Two runs at once, in two processes' worth of provisioners: every tenant is migrated
// exactly once, and both runs end with every tenant accounted for.
func TestMigrateAllConcurrentRuns(t *testing.T) {
	ctx := context.Background()
	pool, names := fleet(t, 16)
	var results [2]schema.Result
	var wg sync.WaitGroup
	for i := range results {
		p := newProvisioner(t, pool, schema.Config{Migrations: addColumn})
		wg.Go(func() {
			var err error
			results[i], err = p.MigrateAll(ctx, schema.RunOptions{Parallel: 2})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	for _, name := range names {
		assert.Equal(t, 1, runs(t, pool, name)[3], "%s migrated once", name)
	}
	assert.Equal(t, 16, results[0].Changed+results[1].Changed, "no tenant done twice")
	for _, r := range results {
		assert.Zero(t, r.Pending())
		assert.Zero(t, r.Failed)
	}
}

// ForEach calls the function once for every active tenant, collecting failures.
func TestForEach(t *testing.T) {
	ctx := context.Background()
	pool, names := fleet(t, 6)
	p := newProvisioner(t, pool, schema.Config{})
	require.NoError(t, p.Suspend(ctx, names[0]))
	var mu sync.Mutex
	seen := map[string]int{}
	res, err := p.ForEach(ctx, schema.RunOptions{Parallel: 3}, func(ctx context.Context, name string) error {
		mu.Lock()
		seen[name]++
		mu.Unlock()
		if name == names[2] {
			return fmt.Errorf("no luck")
		}
		return nil
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), names[2])
	assert.Equal(t, 5, res.Total)
	assert.Equal(t, 4, res.Changed)
	assert.Equal(t, 1, res.Failed)
	want := map[string]int{}
	for _, n := range names[1:] {
		want[n] = 1
	}
	assert.Equal(t, want, seen, "every active tenant once, the suspended one never")
}

// statementCounter counts the statements a pool's connections send.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
