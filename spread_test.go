package tenant_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/tenantctx"
)

// The spread measurement of BENCHMARKS.md. make test runs it small (200 tenants,
// memory only, asserting counts); the figures come from
//
//	go test -run='^TestTenantSpread$' -v -timeout=30m . -args -spread.tenants=10000 -spread.duration=3s -spread.rounds=3 -spread.max=1000
var (
	spreadTenants  = flag.Int("spread.tenants", 200, "TestTenantSpread: tenants to spread the traffic over")
	spreadDuration = flag.Duration("spread.duration", 0, "TestTenantSpread: how long each throughput phase runs (0: none, memory only)")
	spreadConns    = flag.Int("spread.conns", 4, "TestTenantSpread: the pool's connections in the throughput phases")
	spreadClients  = flag.Int("spread.clients", 8, "TestTenantSpread: goroutines sending requests in the throughput phases")
	spreadRounds   = flag.Int("spread.rounds", 3, "TestTenantSpread: rounds of the throughput phases, taking turns")
	spreadMax      = flag.Int("spread.max", 100, "TestTenantSpread: MaxTenantsPerConn of the bounded runs")
	spreadGroups   = flag.Int("spread.groups", 0, "TestTenantSpread: AffinityGroups of the affinity phases (0: one group per connection)")
	spreadPasses   = flag.Int("spread.passes", 0, "TestTenantSpread: warm-up before the rounds, in requests for every tenant (0: a fifth of -spread.duration)")
	spreadStmts    = flag.Int("spread.statements", 0, "TestTenantSpread: StatementCacheCapacity of the throughput phases' connections (0: pgx's default, 512)")
	spreadPhases   = flag.String("spread.phases", "", "TestTenantSpread: only the phases whose names match this regexp, and the baseline")
)

// oneTable is the tenant: one table (with its sequence and primary key index).
var oneTable = fstest.MapFS{"001_docs.sql": {Data: []byte(`
CREATE TABLE docs (id serial PRIMARY KEY, title text NOT NULL);
INSERT INTO docs (title) SELECT 'doc ' || g FROM generate_series(1, 10) g;`)}}

// spreadEnv is a Manager on its own pool of conns connections, without the test env's
// tracing, for the one-table tenants.
func spreadEnv(t *testing.T, conns int32, maxTenants int, iso pgx.TxIsoLevel) *tenant.Manager {
	t.Helper()
	return spreadEnvWith(t, conns, tenant.Config{MaxTenantsPerConn: maxTenants, Isolation: iso})
}

// spreadEnvWith is spreadEnv with more of the Config.
func spreadEnvWith(t *testing.T, conns int32, cfg tenant.Config) *tenant.Manager {
	t.Helper()
	p, err := pool.New(context.Background(), testdb.URL(t), pool.WithMaxConns(conns), pool.WithConfig(func(c *pgxpool.Config) {
		if *spreadStmts > 0 {
			c.ConnConfig.StatementCacheCapacity = *spreadStmts
		}
	}))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	cfg.Pool, cfg.Migrations, cfg.Logger = p, oneTable, slog.New(slog.DiscardHandler)
	mgr, err := tenant.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(mgr.Close)
	return mgr
}

// readDoc is a request: one document of the tenant, by id, checked.
func readDoc(ctx context.Context, mgr *tenant.Manager, name string, id int) error {
	return mgr.Run(ctx, name, func(ctx context.Context) error {
		var title string
		if err := tenantctx.Session(ctx).QueryRow(ctx, "SELECT title FROM docs WHERE id = $1", id).Scan(&title); err != nil {
			return err
		}
		if want := fmt.Sprintf("doc %d", id); title != want {
			return fmt.Errorf("tenant %s: %q, want %q", name, title, want)
		}
		return nil
	})
}

// memoryPass runs one request for each tenant in turn on a Manager with one
// connection, reading the backend's memory inside every 20th request and the last:
// the most memory the backend held, and the most tenants one backend served.
func memoryPass(t *testing.T, names []string, maxTenants int) (maxBytes int64, mostTenants int) {
	t.Helper()
	// READ COMMITTED: the same catalog memory, and no predicate locks piling up
	// behind a long SERIALIZABLE transaction of someone else's on the server.
	mgr := spreadEnv(t, 1, maxTenants, pgx.ReadCommitted)
	ctx := context.Background()
	served := map[uint32]map[string]bool{}
	for i, name := range names {
		err := mgr.Run(ctx, name, func(ctx context.Context) error {
			db := tenantctx.Session(ctx)
			var pid uint32
			var bytes int64
			var title string
			if err := db.QueryRow(ctx, "SELECT title FROM docs WHERE id = $1", 1+i%10).Scan(&title); err != nil {
				return err
			}
			sql := "SELECT pg_backend_pid(), 0::bigint"
			if i%20 == 19 || i == len(names)-1 {
				sql = backendMemorySQL
			}
			if err := db.QueryRow(ctx, sql).Scan(&pid, &bytes); err != nil {
				return err
			}
			if served[pid] == nil {
				served[pid] = map[string]bool{}
			}
			served[pid][name] = true
			mostTenants = max(mostTenants, len(served[pid]))
			maxBytes = max(maxBytes, bytes)
			return nil
		})
		require.NoError(t, err)
	}
	return maxBytes, mostTenants
}

// opened is how many connections the pools that serve mgrs' transactions opened.
func opened(mgrs []*tenant.Manager) (n int64) {
	for p := range requestPools(mgrs) {
		n += p.Stat().NewConnsCount()
	}
	return n
}

// throughput sends requests for random tenants among names from the clients for d,
// on mgrs (a tenant's requests go to mgrs[its index % len(mgrs)]), and returns the
// requests answered per second and the connections the pools opened meanwhile.
func throughput(t *testing.T, mgrs []*tenant.Manager, names []string, d time.Duration) (perSecond float64, newConns int64) {
	t.Helper()
	opened0 := opened(mgrs)
	ctx := context.Background()
	perSecond = requestRate(t, *spreadClients, d, func(int) error {
		i := rand.IntN(len(names))
		return readDoc(ctx, mgrs[i%len(mgrs)], names[i], 1+rand.IntN(10))
	})
	return perSecond, opened(mgrs) - opened0
}

// requestRate runs workers goroutines, each sending requests (request(worker)) until d has
// passed, and returns the requests answered per second. A failed request stops its
// worker and fails the test.
func requestRate(t *testing.T, workers int, d time.Duration, request func(worker int) error) float64 {
	t.Helper()
	var done, failed atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if err := request(w); err != nil {
					failed.Add(1)
					assert.NoError(t, err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	require.Zero(t, failed.Load())
	return float64(done.Load()) / elapsed.Seconds()
}

// warm sends passes requests for every tenant among names, in a random order, from
// the clients: the steady state of a server whose traffic reaches every tenant.
func warm(t *testing.T, mgrs []*tenant.Manager, names []string, passes int) {
	t.Helper()
	order := make([]int, 0, passes*len(names))
	for range passes {
		order = append(order, rand.Perm(len(names))...)
	}
	var next atomic.Int64
	g, ctx := errgroup.WithContext(context.Background())
	for range *spreadClients {
		g.Go(func() error {
			for k := next.Add(1) - 1; k < int64(len(order)) && ctx.Err() == nil; k = next.Add(1) - 1 {
				i := order[k]
				if err := readDoc(ctx, mgrs[i%len(mgrs)], names[i], 1+rand.IntN(10)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
}

// requestPools are the pools whose connections serve mgrs' transactions.
func requestPools(mgrs []*tenant.Manager) iter.Seq[*pgxpool.Pool] {
	return func(yield func(*pgxpool.Pool) bool) {
		for _, m := range mgrs {
			for _, p := range m.RequestPools() {
				if !yield(p) {
					return
				}
			}
		}
	}
}

// backendMemory reads each idle connection's backend memory: the most, and the mean.
func backendMemory(t *testing.T, mgrs []*tenant.Manager) (most, mean int64) {
	t.Helper()
	ctx := context.Background()
	var sum, n int64
	for p := range requestPools(mgrs) {
		for _, c := range p.AcquireAllIdle(ctx) {
			var pid uint32
			var bytes int64
			err := c.QueryRow(ctx, backendMemorySQL, pgx.QueryExecModeSimpleProtocol).Scan(&pid, &bytes)
			c.Release()
			require.NoError(t, err)
			most, sum, n = max(most, bytes), sum+bytes, n+1
		}
	}
	return most, sum / max(n, 1)
}

// TestTenantSpread measures what serving many tenants costs a backend, without and
// with MaxTenantsPerConn (-spread.max), and with -spread.duration the throughput of
// requests spread over them against requests for one tenant, in the same run.
func TestTenantSpread(t *testing.T) {
	t.Parallel() // one of the long runs: they overlap, after the package's short tests
	n := *spreadTenants
	start := time.Now()
	seed := spreadEnv(t, 4, 0, "")
	names := make([]string, n)
	g, gctx := errgroup.WithContext(context.Background())
	g.SetLimit(4)
	for i := range names {
		names[i] = fmt.Sprintf("spread_%05d", i)
		g.Go(func() error { return seed.Provisioner().Ensure(gctx, names[i]) })
	}
	admin := testdb.Pool(t)
	t.Cleanup(func() { dropSchemas(admin, names) })
	require.NoError(t, g.Wait())
	t.Logf("%d tenants provisioned in %v", n, time.Since(start))

	start = time.Now()
	oneBytes, _ := memoryPass(t, names[:1], -1)
	before, beforeTenants := memoryPass(t, names, -1)
	bound := *spreadMax
	after, afterTenants := memoryPass(t, names, bound)
	t.Logf("per-backend memory after one request for each of %d tenants on one connection: one tenant %.1f MB; unbounded %.1f MB (%d tenants, %.2fx); MaxTenantsPerConn %d: %.1f MB (%d tenants, %.2fx)",
		n, mb(oneBytes), mb(before), beforeTenants, float64(before)/float64(oneBytes),
		bound, mb(after), afterTenants, float64(after)/float64(oneBytes))
	t.Logf("memory passes in %v", time.Since(start))
	assert.Equal(t, n, beforeTenants, "the control: unbounded, the backend serves every tenant")
	assert.LessOrEqual(t, afterTenants, bound)
	if n >= 2*bound {
		assert.Less(t, after-oneBytes, (before-oneBytes)*3/4, "bounded, a backend grows by less than an unbounded one")
	}
	if *spreadDuration == 0 {
		return
	}

	conns := *spreadConns
	groups := cmp.Or(*spreadGroups, conns)
	type phase struct {
		name    string
		mgrs    []*tenant.Manager
		tenants []string
	}
	only := regexp.MustCompile(*spreadPhases)
	var phases []phase
	add := func(name string, maxTenants, groups int, tenants []string) {
		if len(phases) == 0 || only.MatchString(name) {
			mgr := spreadEnvWith(t, int32(conns), tenant.Config{MaxTenantsPerConn: maxTenants, AffinityGroups: groups})
			phases = append(phases, phase{name, []*tenant.Manager{mgr}, tenants})
		}
	}
	// AffinityGroups 1 is the control of the groups: the same connections (the
	// transactions' own, and the pool's for admission), one group.
	add("one tenant (baseline)", 0, 0, names[:1])
	add(fmt.Sprintf("%d tenants, unbounded (before)", n), -1, 0, names)
	add(fmt.Sprintf("%d tenants, MaxTenantsPerConn %d", n, bound), bound, 0, names)
	add(fmt.Sprintf("%d tenants, unbounded, AffinityGroups 1", n), -1, 1, names)
	add(fmt.Sprintf("%d tenants, unbounded, AffinityGroups %d", n, groups), -1, groups, names)
	add(fmt.Sprintf("%d tenants, MaxTenantsPerConn %d, AffinityGroups 1", n, bound), bound, 1, names)
	add(fmt.Sprintf("%d tenants, MaxTenantsPerConn %d, AffinityGroups %d", n, bound, groups), bound, groups, names)
	start = time.Now()
	for _, p := range phases {
		if *spreadPasses > 0 {
			warm(t, p.mgrs, p.tenants, *spreadPasses)
		} else {
			_, _ = throughput(t, p.mgrs, p.tenants, *spreadDuration/5)
		}
	}
	t.Logf("warm-up in %v", time.Since(start))
	// The phases take turns, round after round, and each ratio is the median of the
	// per-round ratios to the baseline: a round the machine was busy for weighs on
	// both sides of its ratio.
	ratios := make([][]float64, len(phases))
	rates := make([][]float64, len(phases))
	newConns := make([]int64, len(phases))
	for range *spreadRounds {
		var base float64
		for i, p := range phases {
			rate, n := throughput(t, p.mgrs, p.tenants, *spreadDuration)
			if i == 0 {
				base = rate
			}
			rates[i], ratios[i], newConns[i] = append(rates[i], rate), append(ratios[i], rate/base), newConns[i]+n
		}
	}
	for i, p := range phases {
		most, mean := backendMemory(t, p.mgrs)
		t.Logf("%-60s %8.0f/s %5.2fx  %5d connections opened  backend memory at the end: mean %.1f MB, most %.1f MB",
			p.name, median(rates[i]), median(ratios[i]), newConns[i], mb(mean), mb(most))
	}
	if *spreadCeiling {
		ratio, one, spread := ceiling(t, names)
		t.Logf("%-60s %8.0f/s %5.2fx  (one tenant, the same way: %.0f/s)",
			fmt.Sprintf("the server's ceiling, %d clients alone on their connections", *spreadConns), spread, ratio, one)
	}
}

// dropSchemas drops the schemas, a hundred per statement (each takes a lock per
// object it drops, and a server's lock table is bounded).
func dropSchemas(admin *pgxpool.Pool, names []string) {
	var g errgroup.Group
	g.SetLimit(2)
	for chunk := range slices.Chunk(names, 100) {
		ids := make([]string, len(chunk))
		for i, name := range chunk {
			ids[i] = pgx.Identifier{name}.Sanitize()
		}
		g.Go(func() error {
			_, err := admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+strings.Join(ids, ", ")+" CASCADE")
			return err
		})
	}
	_ = g.Wait()
}

func mb(bytes int64) float64 { return float64(bytes) / (1 << 20) }
