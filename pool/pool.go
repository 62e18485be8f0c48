// Package pool builds pgx pools with tenant's defaults and keeps one pool per DSN.
//
// Every pool comes from pgxpool.ParseConfig, so all pgx connection-string settings
// work; then the defaults below apply to what the DSN left unset, then the options.
// Passwords never appear in this package's errors or log lines.
package pool

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults applied to settings the DSN does not name (pool_max_conn_lifetime,
// pool_max_conn_lifetime_jitter, pool_max_conn_idle_time).
const (
	// DefaultMaxConnLifetime recycles connections hourly: a backend caches catalog
	// data for every tenant table it touched (10-20 KB each) until it disconnects, so
	// with thousands of tenants long-lived connections grow to hundreds of MB.
	DefaultMaxConnLifetime = time.Hour
	// DefaultMaxConnLifetimeJitter spreads those reconnects so connections made
	// together do not all close together.
	DefaultMaxConnLifetimeJitter = 6 * time.Minute
	// DefaultMaxConnIdleTime closes connections idle this long, returning memory to
	// the server after a burst.
	DefaultMaxConnIdleTime = 10 * time.Minute
)

// Option changes how New builds a pool.
type Option func(*settings)

type settings struct {
	configure []func(*pgxpool.Config)
	onCreate  []func(context.Context, *pgxpool.Pool) error
	log       *slog.Logger
}

// apply collects opts in order.
func apply(opts []Option) settings {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	return s
}

// WithMaxConnLifetime sets how long a connection lives, plus a random extra of at
// most jitter.
func WithMaxConnLifetime(d, jitter time.Duration) Option {
	return WithConfig(func(c *pgxpool.Config) { c.MaxConnLifetime, c.MaxConnLifetimeJitter = d, jitter })
}

// WithMaxConnIdleTime sets after how long an idle connection is closed.
func WithMaxConnIdleTime(d time.Duration) Option {
	return WithConfig(func(c *pgxpool.Config) { c.MaxConnIdleTime = d })
}

// WithMaxConns caps the pool's connections.
func WithMaxConns(n int32) Option {
	return WithConfig(func(c *pgxpool.Config) { c.MaxConns = n })
}

// WithQueryExecMode sets how statements are sent. Behind PgBouncer in transaction
// mode before 1.21 (or without max_prepared_statements) use pgx.QueryExecModeExec or
// pgx.QueryExecModeDescribeExec: the default statement cache relies on prepared
// statements surviving on one server connection, which PgBouncer does not promise.
func WithQueryExecMode(mode pgx.QueryExecMode) Option {
	return WithConfig(func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
}

// WithConfig edits the parsed pgxpool.Config before the pool is made: set hooks
// (AfterConnect, PrepareConn, BeforeClose), a tracer, or anything else. Options run
// in order, after the defaults.
func WithConfig(fn func(*pgxpool.Config)) Option {
	return func(s *settings) { s.configure = append(s.configure, fn) }
}

// WithOnCreate runs fn once for every pool New makes, before New returns it (for
// example to ping, register types, or record metrics). When fn fails, the pool is
// closed and New returns fn's error.
func WithOnCreate(fn func(context.Context, *pgxpool.Pool) error) Option {
	return func(s *settings) { s.onCreate = append(s.onCreate, fn) }
}

// WithLogger sets where a Registry logs the pools it makes and invalidates (DSNs
// redacted). Default slog.Default(). New alone logs nothing, so it ignores this.
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) { s.log = l }
}

// New parses dsn with pgxpool.ParseConfig, applies the defaults and options, and
// returns a pool. Like pgxpool.NewWithConfig it does not connect until the pool is
// first used (unless an OnCreate callback does), so an application can start while
// the database is down.
func New(ctx context.Context, dsn string, opts ...Option) (*pgxpool.Pool, error) {
	cfg, err := ParseConfig(dsn, opts...)
	if err != nil {
		return nil, err
	}
	s := apply(opts)
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pool: %s: %w", Redact(dsn), scrub(err, dsn))
	}
	for _, fn := range s.onCreate {
		if err := fn(ctx, p); err != nil {
			p.Close()
			return nil, fmt.Errorf("pool: %s: on create: %w", Redact(dsn), scrub(err, dsn))
		}
	}
	return p, nil
}

// ParseConfig is New without making the pool: pgxpool.ParseConfig, then the
// defaults for what the DSN left unset, then the options' config edits.
func ParseConfig(dsn string, opts ...Option) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err == nil {
		err = applyDefaults(cfg, dsn)
	}
	if err != nil {
		return nil, &ConfigError{Redacted: Redact(dsn), err: err, dsn: dsn}
	}
	for _, fn := range apply(opts).configure {
		fn(cfg)
	}
	return cfg, nil
}

// applyDefaults sets the package defaults on what dsn leaves unset. pgxpool's parsed
// config cannot say that: it holds pgxpool's own default for a missing key and
// removes the pool keys it read. So dsn is parsed again by pgconn, which keeps every
// key it does not know (the pool keys among them) in RuntimeParams: the DSN's
// settings as parsed, whatever their spelling (URL or keyword/value, escaped, from a
// service file), and never text inside another value.
func applyDefaults(cfg *pgxpool.Config, dsn string) error {
	parsed, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return err
	}
	named := parsed.RuntimeParams
	if _, ok := named["pool_max_conn_lifetime"]; !ok {
		cfg.MaxConnLifetime = DefaultMaxConnLifetime
	}
	if _, ok := named["pool_max_conn_lifetime_jitter"]; !ok {
		cfg.MaxConnLifetimeJitter = DefaultMaxConnLifetimeJitter
	}
	if _, ok := named["pool_max_conn_idle_time"]; !ok {
		cfg.MaxConnIdleTime = DefaultMaxConnIdleTime
	}
	return nil
}
