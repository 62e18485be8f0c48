// Command fleetbench measures operations over many tenants (BENCHMARKS.md, "Many
// tenants"): it makes a database of one-table tenants when they are missing (the
// fixture), then times a no-op MigrateAll and an ADD COLUMN over every tenant, serial
// and in parallel, in the same run.
//
//	go run ./internal/cmd/fleetbench [-tenants 10000] [-db tenant_fleet] [-parallel 0]
//
// DATABASE_URL names the server (else 127.0.0.1:5432, user postgres). The fixture is
// kept between runs: making 10,000 tenants takes a few minutes once.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"sync/atomic"
	"syscall"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/tenantkit/tenant/internal/benchdb"
	"github.com/tenantkit/tenant/schema"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg config
	flag.IntVar(&cfg.tenants, "tenants", 10000, "tenants in the fixture")
	flag.StringVar(&cfg.database, "db", "tenant_fleet", "the fixture's database, made when missing")
	flag.IntVar(&cfg.parallel, "parallel", 0, "tenants migrated at once in the parallel run (default: MigrateAll's)")
	flag.Parse()
	cfg.dsn = os.Getenv("DATABASE_URL")
	if cfg.dsn == "" {
		cfg.dsn = benchdb.LocalURL
	}
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(1)
	}
}

type config struct {
	dsn      string
	database string
	tenants  int
	parallel int
}

// report is what a run measured.
type report struct {
	made           int           // tenants the fixture had to make
	noop           time.Duration // median no-op MigrateAll
	noopQueries    int64         // statements one no-op MigrateAll sent
	serial, para   time.Duration // one ADD COLUMN over every tenant
	serialN, paraN int           // tenants each changed
}

// fixtureMigration is the fixture's one table.
const fixtureMigration = `CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL)`

func run(ctx context.Context, cfg config, out io.Writer) (report, error) {
	var r report
	if err := benchdb.Create(ctx, cfg.dsn, cfg.database); err != nil {
		return r, fmt.Errorf("create database %s: %w", cfg.database, err)
	}
	pcfg, err := pgxpool.ParseConfig(cfg.dsn)
	if err != nil {
		return r, err
	}
	pcfg.ConnConfig.Database = cfg.database
	pcfg.MaxConns = 8
	statements := &statementCounter{}
	pcfg.ConnConfig.Tracer = statements
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return r, err
	}
	defer pool.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	base := fstest.MapFS{"001_items.sql": {Data: []byte(fixtureMigration)}}
	p, err := schema.NewProvisioner(pool, schema.Config{Migrations: base, Logger: log})
	if err != nil {
		return r, err
	}
	start := time.Now()
	if r.made, err = makeFixture(ctx, p, cfg.tenants); err != nil {
		return r, err
	}
	fmt.Fprintf(out, "fixture: %d tenants (%d made in %v)\n", cfg.tenants, r.made, time.Since(start).Round(time.Millisecond))

	// No-op: every tenant is at a version at least the latest file's.
	var noops []time.Duration
	for range 5 {
		statements.n.Store(0)
		t0 := time.Now()
		if _, err := p.MigrateAll(ctx, schema.RunOptions{}); err != nil {
			return r, err
		}
		noops = append(noops, time.Since(t0))
		r.noopQueries = statements.n.Load()
	}
	sort.Slice(noops, func(i, j int) bool { return noops[i] < noops[j] })
	r.noop = noops[len(noops)/2]
	fmt.Fprintf(out, "no-op MigrateAll: %v (median of 5), %d statement(s)\n", r.noop.Round(time.Microsecond), r.noopQueries)

	// One ADD COLUMN for all, serial then parallel: two migrations numbered after the
	// highest version the fixture has, so the fixture can be reused.
	var top int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 1) FROM tenant_registry.tenants`).Scan(&top); err != nil {
		return r, err
	}
	for i, parallel := range []int{1, cfg.parallel} {
		v := top + int64(i) + 1
		files := fstest.MapFS{"001_items.sql": base["001_items.sql"],
			fmt.Sprintf("%d_add.sql", v): {Data: []byte(fmt.Sprintf("ALTER TABLE items ADD COLUMN c%d text", v))}}
		p, err := schema.NewProvisioner(pool, schema.Config{Migrations: files, Logger: log})
		if err != nil {
			return r, err
		}
		t0 := time.Now()
		res, err := p.MigrateAll(ctx, schema.RunOptions{Parallel: parallel})
		if err != nil {
			return r, err
		}
		if i == 0 {
			r.serial, r.serialN = time.Since(t0), res.Changed
		} else {
			r.para, r.paraN = time.Since(t0), res.Changed
		}
	}
	fmt.Fprintf(out, "ADD COLUMN over %d tenants: serial %v, parallel %v: %.2fx faster\n",
		r.paraN, r.serial.Round(time.Millisecond), r.para.Round(time.Millisecond), float64(r.serial)/float64(r.para))
	return r, nil
}

// makeFixture makes the tenants fleet_00000.. that are missing, four at a time, and
// returns how many it made.
func makeFixture(ctx context.Context, p *schema.Provisioner, n int) (int, error) {
	have, err := p.List(ctx, "")
	if err != nil {
		return 0, err
	}
	exists := make(map[string]bool, len(have))
	for _, name := range have {
		exists[name] = true
	}
	var made atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range n {
		name := fmt.Sprintf("fleet_%05d", i)
		if exists[name] {
			continue
		}
		g.Go(func() error {
			made.Add(1)
			return p.Ensure(gctx, name)
		})
	}
	err = g.Wait()
	return int(made.Load()), err
}

// statementCounter counts the statements the pool's connections send.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
