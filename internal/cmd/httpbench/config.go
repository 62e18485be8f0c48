package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tenantkit/tenant/internal/benchdb"
)

// localURL is the server the tests use when DATABASE_URL is unset.
const localURL = benchdb.LocalURL

// config is one run of the benchmark.
type config struct {
	goTool    string          // the go command that builds the servers
	race      bool            // build them with -race (the smoke test: it reuses the race build of make test)
	dsn       string          // the PostgreSQL server (any database on it)
	database  string          // the database the run uses, made when missing; "" for dsn's own
	servers   []kind          // in the order of each round
	tenants   []int           // tenant counts; each request picks one at random
	isolation []string        // isolation levels, as benchserver names them
	delays    []time.Duration // delay of each direction between servers and PostgreSQL
	clients   int             // concurrent keep-alive clients
	pool      int             // connections in each server's pool
	documents int             // documents per tenant; each request reads one at random
	duration  time.Duration   // of each server's turn in a round
	warmup    time.Duration   // of each server's load before a cell's first round
	rounds    int
}

// errUsage marks a command line the flag package refused (and reported).
var errUsage = errors.New("usage")

// isolationLevels maps the names -isolation accepts to the SQL the report shows.
var isolationLevels = map[string]string{
	"read-committed":  "READ COMMITTED",
	"repeatable-read": "REPEATABLE READ",
	"serializable":    "SERIALIZABLE",
}

// parseFlags reads the command line into a config.
func parseFlags(args []string, getenv func(string) string) (config, error) {
	fs := flag.NewFlagSet("httpbench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./internal/cmd/httpbench [flags]\n\n%s\n\nflags:\n", usageText)
		fs.PrintDefaults()
	}
	cfg := config{}
	var servers, tenants, isolation, delays string
	fs.StringVar(&cfg.goTool, "go", "go", "the go command that builds the servers")
	fs.StringVar(&cfg.dsn, "dsn", "", "PostgreSQL server (default DATABASE_URL, else "+localURL+")")
	fs.StringVar(&cfg.database, "db", "tenant_bench", "database for the run on that server, made when missing (\"\": the DSN's own)")
	fs.StringVar(&servers, "servers", kindNames(), "servers to compare")
	fs.StringVar(&tenants, "tenants", "1,200", "tenant counts; each request picks one of the tenants at random")
	fs.StringVar(&isolation, "isolation", "read-committed,serializable", "isolation levels: read-committed, repeatable-read, serializable")
	fs.StringVar(&delays, "delay", "0", "delays of each direction between the servers and PostgreSQL (e.g. 1ms); with a delay the report compares p50 latency")
	fs.IntVar(&cfg.clients, "clients", 16, "concurrent keep-alive clients")
	fs.IntVar(&cfg.pool, "pool", 8, "connections in each server's pool")
	fs.IntVar(&cfg.documents, "documents", 10, "documents per tenant")
	fs.DurationVar(&cfg.duration, "duration", 3*time.Second, "each server's turn in a round")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "each server's load before a cell's first round, not measured")
	fs.IntVar(&cfg.rounds, "rounds", 5, "rounds; each gives every server a turn, in order")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if cfg.dsn == "" {
		cfg.dsn = getenv("DATABASE_URL")
	}
	if cfg.dsn == "" {
		cfg.dsn = localURL
	}
	var err error
	if cfg.servers, err = parseKinds(servers); err != nil {
		return config{}, err
	}
	if cfg.tenants, err = parseInts(tenants); err != nil {
		return config{}, fmt.Errorf("-tenants: %w", err)
	}
	if cfg.isolation, err = parseIsolations(isolation); err != nil {
		return config{}, err
	}
	if cfg.delays, err = parseDurations(delays); err != nil {
		return config{}, fmt.Errorf("-delay: %w", err)
	}
	return cfg, cfg.check()
}

// usageText introduces the flags.
const usageText = `Compares, over HTTP, servers each in a process of its own answering a one-query
read for a tenant: a hand-written chi + pgx baseline, the autocommit floor, a route
without a database, tenant.Middleware, and the example app. Prints a markdown table of
medians across rounds and ratios to the baseline. Run from the repository.`

// check refuses settings that cannot give a result.
func (c config) check() error {
	switch {
	case c.clients < 1, c.pool < 1, c.documents < 1, c.rounds < 1:
		return errors.New("-clients, -pool, -documents and -rounds must be at least 1")
	case c.duration <= 0:
		return errors.New("-duration must be positive")
	case c.warmup < 0:
		return errors.New("-warmup must not be negative")
	case len(c.tenants) == 0, len(c.isolation) == 0, len(c.delays) == 0:
		return errors.New("-tenants, -isolation and -delay need at least one value")
	}
	for _, n := range c.tenants {
		if n < 1 || n > 9999 {
			return fmt.Errorf("-tenants: %d is not between 1 and 9999", n)
		}
	}
	for _, d := range c.delays {
		if d < 0 {
			return fmt.Errorf("-delay: %v is negative", d)
		}
	}
	return nil
}

// maxTenants is how many tenants the run provisions.
func (c config) maxTenants() int { return maxOf(c.tenants) }

// maxOf returns the largest of xs.
func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// parseInts reads a comma-separated list of integers.
func parseInts(list string) ([]int, error) {
	var out []int
	for _, f := range splitList(list) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// parseDurations reads a comma-separated list of durations ("0" is zero).
func parseDurations(list string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range splitList(list) {
		d, err := time.ParseDuration(f)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// parseIsolations reads a comma-separated list of isolation levels.
func parseIsolations(list string) ([]string, error) {
	var out []string
	for _, f := range splitList(list) {
		f = strings.ToLower(strings.NewReplacer(" ", "-", "_", "-").Replace(f))
		if _, ok := isolationLevels[f]; !ok {
			return nil, fmt.Errorf("-isolation: unknown level %q (want read-committed, repeatable-read or serializable)", f)
		}
		out = append(out, f)
	}
	return out, nil
}
