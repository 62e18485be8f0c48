// Command rolebench measures what database-enforced tenant isolation costs
// (BENCHMARKS.md, "Database-enforced isolation: mechanisms"; docs/security.md): the
// cost of opening a connection as a tenant's login role (trust, SCRAM directly on a
// throwaway cluster, SCRAM through PgBouncer), a tenant's first transaction on a new
// backend, making a tenant's role and grants for a 20-table schema, and the throughput
// of a one-query transaction for random tenants under each mechanism, against the
// default in the same run:
//
//   - default: one pool of -conns connections as the schemas' owner, SET LOCAL
//     search_path;
//
//   - SET LOCAL ROLE: the same pool as a role that is a member of every tenant role;
//
//   - login roles: each tenant logs in as its own role, through a warm set of -conns
//     connections in all (LRU: the least recently used idle connection is closed to
//     open one for another tenant);
//
//   - login roles through PgBouncer (transaction mode, auth_query, SCRAM,
//     max_db_connections = -conns; the application keeps up to 256 client connections,
//     LRU).
//
//     go run ./internal/cmd/rolebench [-tenants 1,200,10000] [-rounds 3] [-duration 3s]
//
// DATABASE_URL names the server (else 127.0.0.1:5432, user postgres, a superuser). It
// makes the database tenant_rolebench and one LOGIN role per tenant (cluster-wide,
// named tenant_rolebench_*), and drops both at the end, and at the start what an
// interrupted run left.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/internal/benchdb"
	"github.com/tenantkit/tenant/internal/bouncer"
)

type config struct {
	dsn      string
	database string
	tenants  []int
	rounds   int
	duration time.Duration
	warmup   time.Duration
	workers  int
	conns    int
	samples  int
	scram    bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := config{dsn: os.Getenv("DATABASE_URL")}
	if cfg.dsn == "" {
		cfg.dsn = benchdb.LocalURL
	}
	tenants := flag.String("tenants", "1,200,10000", "tenant counts to measure throughput at, comma-separated")
	flag.StringVar(&cfg.database, "db", "tenant_rolebench", "the database to make (and drop at the end)")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds of every mode, in alternating order; ratios are medians over rounds")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "one mode's phase in a round")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "an unmeasured phase of each mode before the rounds")
	flag.IntVar(&cfg.workers, "workers", 8, "concurrent requests")
	flag.IntVar(&cfg.conns, "conns", 8, "server connections of every mode")
	flag.IntVar(&cfg.samples, "samples", 30, "samples of each setup cost")
	flag.BoolVar(&cfg.scram, "scram", true, "measure SCRAM logins on a throwaway cluster too")
	flag.Parse()
	for _, s := range strings.Split(*tenants, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "rolebench: -tenants: %q is not a count\n", s)
			os.Exit(2)
		}
		cfg.tenants = append(cfg.tenants, n)
	}
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rolebench:", err)
		os.Exit(1)
	}
}

// withDatabase returns dsn (a URL) with database db.
func withDatabase(dsn, db string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	u.Path = "/" + db
	return u.String(), nil
}

func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	admin, err := pgx.Connect(ctx, cfg.dsn)
	if err != nil {
		return err
	}
	defer func() { _ = admin.Close(context.Background()) }()
	dbURL, err := withDatabase(cfg.dsn, cfg.database)
	if err != nil {
		return err
	}
	most := slices.Max(cfg.tenants)
	fmt.Fprintf(out, "making %d tenants, each with a login role...\n", max(most, 2*cfg.samples))
	start := time.Now()
	defer func() { err = errors.Join(err, teardown(context.Background(), admin, cfg.database)) }()
	if err := fixture(ctx, admin, dbURL, cfg.database, max(most, 2*cfg.samples), cfg.tenants); err != nil {
		return err
	}
	fmt.Fprintf(out, "made in %s\n\n", time.Since(start).Round(time.Second))

	if err := setupCosts(ctx, cfg, dbURL, out); err != nil {
		return err
	}
	b, err := bouncer.StartWith(ctx, dbURL, bouncer.Options{
		Mode: "transaction", PoolSize: cfg.conns, AuthType: "scram-sha-256",
		AuthUser: authRole(), AuthPassword: benchPassword,
		AuthQuery: "SELECT usename, passwd FROM rolebench_auth.lookup($1)",
		Settings:  []string{fmt.Sprintf("max_db_connections = %d", cfg.conns), "max_client_conn = 1000"},
	})
	if errors.Is(err, bouncer.ErrNotInstalled) {
		fmt.Fprintln(out, "pgbouncer is not installed: its mode is left out")
	} else if err != nil {
		return err
	} else {
		defer func() { _ = b.Stop() }()
		d, err := timeConnect(ctx, b.URL(authRole(), cfg.database), roleName(0), benchPassword, cfg.samples)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "| client login through PgBouncer, SCRAM via auth_query (its server connection warm) | %s |\n\n", ms(d))
	}
	return throughput(ctx, cfg, dbURL, b, out)
}

// setupCosts prints the table of connection and role setup costs.
func setupCosts(ctx context.Context, cfg config, dbURL string, out io.Writer) error {
	fmt.Fprintln(out, "| setup cost (median) | time |")
	fmt.Fprintln(out, "|---|---:|")
	owner, err := timeConnect(ctx, dbURL, ownerRole(), "", cfg.samples)
	if err != nil {
		return err
	}
	tenant, err := timeConnect(ctx, dbURL, roleName(0), benchPassword, cfg.samples)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "| new connection, trust, as the owner | %s |\n| new connection, trust, as a tenant's login role | %s |\n", ms(owner), ms(tenant))
	rate, err := connectRate(ctx, dbURL, roleName(0), cfg.workers, cfg.duration)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "| new connections per second, %d opening at once (the server's rate of backend starts) | %.0f/s |\n", cfg.workers, rate)
	if cfg.scram {
		trust, scram, err := scramConnect(ctx, cfg.samples)
		if err != nil {
			return fmt.Errorf("scram: %w", err)
		}
		fmt.Fprintf(out, "| throwaway cluster: new connection, trust | %s |\n| throwaway cluster: new connection, SCRAM-SHA-256 (%.1f×) | %s |\n",
			ms(trust), float64(scram)/float64(trust), ms(scram))
	}
	fresh, shared, err := firstRequests(ctx, dbURL, cfg.samples)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "| one-query transaction: first on a new backend, then the second | %s, %s |\n", ms(fresh[0]), ms(fresh[1]))
	fmt.Fprintf(out, "| one-query transaction: a tenant's first on a warm shared backend, then the second | %s, %s |\n", ms(shared[0]), ms(shared[1]))
	secret, plain, tables, err := grantCosts(ctx, dbURL, cfg.samples)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "| making 20 tables (the baseline) | %s |\n", ms(tables))
	fmt.Fprintf(out, "| CREATE ROLE with a SCRAM secret + grants for those 20 tables (%.2f×) | %s |\n", float64(secret)/float64(tables), ms(secret))
	fmt.Fprintf(out, "| the same, the server hashing a plaintext password (%.2f×) | %s |\n\n", float64(plain)/float64(tables), ms(plain))
	return nil
}

// throughput prints, for each tenant count, each mode's throughput as a ratio to the
// default's in the same round (median over rounds), and its server connections.
func throughput(ctx context.Context, cfg config, dbURL string, b *bouncer.Bouncer, out io.Writer) error {
	asRole := func(role string) string {
		u, _ := url.Parse(dbURL)
		u.User = url.User(role)
		return u.String()
	}
	specs := []modeSpec{
		{"default", "^$", func(ctx context.Context) (mode, error) {
			return newPoolMode(ctx, "default", asRole(ownerRole()), cfg.conns, false)
		}},
		{"SET LOCAL ROLE", "^$", nil}, // made per tenant count: its role is a member of that many
		{"login roles, warm set", "^$", func(context.Context) (mode, error) {
			return newLoginMode("login roles, warm set", dbURL, cfg.conns, nil)
		}},
	}
	if b != nil {
		specs = append(specs, modeSpec{"login roles via PgBouncer", "^" + authRole() + "$", func(context.Context) (mode, error) {
			return newLoginMode("login roles via PgBouncer", b.URL(authRole(), cfg.database), 256, b)
		}})
	}
	sampler, err := pgx.Connect(ctx, cfg.dsn)
	if err != nil {
		return err
	}
	defer func() { _ = sampler.Close(context.Background()) }()
	fmt.Fprintf(out, "%d workers, %d server connections per mode, %d rounds of %s (after %s of warm-up), one-query transactions for random tenants\n\n",
		cfg.workers, cfg.conns, cfg.rounds, cfg.duration, cfg.warmup)
	fmt.Fprintln(out, "| tenants | mode | throughput vs default (median) | requests/s (median) | backends at once (peak, exiting ones included) | connections opened per 1,000 requests |")
	fmt.Fprintln(out, "|---:|---|---:|---:|---:|---:|")
	for _, n := range cfg.tenants {
		specs[1].make = func(ctx context.Context) (mode, error) {
			return newPoolMode(ctx, "SET LOCAL ROLE", asRole(appRole(n)), cfg.conns, true)
		}
		for _, s := range specs {
			if _, err := load(ctx, s, sampler, cfg.database, cfg.workers, n, cfg.warmup); err != nil {
				return err
			}
		}
		ratios := make([][]float64, len(specs))
		rates := make([][]float64, len(specs))
		peaks := make([]int, len(specs))
		opened := make([]float64, len(specs))
		for r := range cfg.rounds {
			res := make([]result, len(specs))
			for k := range specs {
				i := (k + r) % len(specs) // each round starts with another mode
				if res[i], err = load(ctx, specs[i], sampler, cfg.database, cfg.workers, n, cfg.duration); err != nil {
					return err
				}
			}
			for i := range specs {
				rates[i] = append(rates[i], res[i].rate())
				ratios[i] = append(ratios[i], res[i].rate()/res[0].rate())
				peaks[i] = max(peaks[i], res[i].peak)
				opened[i] += 1000 * float64(res[i].opened) / float64(res[i].requests) / float64(cfg.rounds)
			}
		}
		for i, s := range specs {
			slices.Sort(ratios[i])
			slices.Sort(rates[i])
			fmt.Fprintf(out, "| %d | %s | %s | %.0f | %d | %.1f |\n", n, s.label, ratio(ratios[i][len(ratios[i])/2]), rates[i][len(rates[i])/2], peaks[i], opened[i])
		}
	}
	return nil
}

// ratio prints r with two decimals, or two significant digits below 0.1 (a mode that
// runs at a few thousandths of the default).
func ratio(r float64) string {
	if r >= 0.1 {
		return fmt.Sprintf("%.2f×", r)
	}
	return fmt.Sprintf("%.2g×", r)
}
