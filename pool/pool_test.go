package pool_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
)

func TestNewDefaults(t *testing.T) {
	ctx := context.Background()
	p, err := pool.New(ctx, testdb.URL(t))
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.Ping(ctx))

	cfg := p.Config()
	assert.Equal(t, pool.DefaultMaxConnLifetime, cfg.MaxConnLifetime)
	assert.Equal(t, pool.DefaultMaxConnLifetimeJitter, cfg.MaxConnLifetimeJitter)
	assert.Equal(t, pool.DefaultMaxConnIdleTime, cfg.MaxConnIdleTime)
	assert.Equal(t, pgx.QueryExecModeCacheStatement, cfg.ConnConfig.DefaultQueryExecMode)
}

// A setting the DSN names wins over the package default; one it does not name gets
// the default. Whether the DSN names it is read from the parsed connection string, so
// a key spelled with escapes counts and text inside other values does not.
func TestDSNSettingsWinOverDefaults(t *testing.T) {
	const (
		life   = pool.DefaultMaxConnLifetime
		jitter = pool.DefaultMaxConnLifetimeJitter
		idle   = pool.DefaultMaxConnIdleTime
	)
	tests := []struct {
		name               string
		dsn                string
		life, jitter, idle time.Duration
	}{
		{"url, none set", "postgres://app@db/app", life, jitter, idle},
		{"url, all set", "postgres://app@db/app?pool_max_conn_lifetime=5m&pool_max_conn_idle_time=1m&pool_max_conn_lifetime_jitter=0s",
			5 * time.Minute, 0, time.Minute},
		{"url, jitter only", "postgres://app@db/app?pool_max_conn_lifetime_jitter=1s", life, time.Second, idle},
		{"url, escaped key", "postgres://app@db/app?pool%5Fmax%5Fconn%5Flifetime=2h", 2 * time.Hour, jitter, idle},
		{"url, explicit pgx default", "postgres://app@db/app?pool_max_conn_idle_time=30m", life, jitter, 30 * time.Minute},
		{"url, key inside another value", "postgres://app@db/app?application_name=pool_max_conn_idle_time%3D5m", life, jitter, idle},
		{"url, key inside the password", "postgres://app:pool_max_conn_idle_time=1s@db/app", life, jitter, idle},
		{"keyword/value, none set", "host=db user=app", life, jitter, idle},
		{"keyword/value, spaces", "host=db user=app pool_max_conn_lifetime = 2m", 2 * time.Minute, jitter, idle},
		{"keyword/value, all set", "host=db pool_max_conn_lifetime=5m pool_max_conn_idle_time=1m pool_max_conn_lifetime_jitter=0s",
			5 * time.Minute, 0, time.Minute},
		{"keyword/value, key inside a quoted value", "host=db application_name='pool_max_conn_idle_time=5m'", life, jitter, idle},
		{"keyword/value, key inside options", "host=db options='-c pool_max_conn_lifetime_jitter=1s'", life, jitter, idle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := pool.ParseConfig(tt.dsn)
			require.NoError(t, err)
			assert.Equal(t, tt.life, cfg.MaxConnLifetime, "MaxConnLifetime")
			assert.Equal(t, tt.jitter, cfg.MaxConnLifetimeJitter, "MaxConnLifetimeJitter")
			assert.Equal(t, tt.idle, cfg.MaxConnIdleTime, "MaxConnIdleTime")
		})
	}

	cfg, err := pool.ParseConfig(testdb.URL(t) + "&pool_max_conns=7")
	require.NoError(t, err)
	assert.Equal(t, int32(7), cfg.MaxConns, "pgxpool's own settings pass through")
}

func TestOptions(t *testing.T) {
	ctx := context.Background()
	var connected int
	p, err := pool.New(ctx, testdb.URL(t),
		pool.WithMaxConnLifetime(30*time.Minute, time.Minute),
		pool.WithMaxConnIdleTime(time.Minute),
		pool.WithMaxConns(2),
		pool.WithQueryExecMode(pgx.QueryExecModeExec),
		pool.WithConfig(func(c *pgxpool.Config) {
			c.AfterConnect = func(context.Context, *pgx.Conn) error { connected++; return nil }
		}),
	)
	require.NoError(t, err)
	defer p.Close()
	cfg := p.Config()
	assert.Equal(t, 30*time.Minute, cfg.MaxConnLifetime)
	assert.Equal(t, time.Minute, cfg.MaxConnLifetimeJitter)
	assert.Equal(t, time.Minute, cfg.MaxConnIdleTime)
	assert.Equal(t, int32(2), cfg.MaxConns)
	assert.Equal(t, pgx.QueryExecModeExec, cfg.ConnConfig.DefaultQueryExecMode)

	var n int
	require.NoError(t, p.QueryRow(ctx, "SELECT $1::int", 41).Scan(&n), "exec mode works against the server")
	assert.Equal(t, 41, n)
	assert.Equal(t, 1, connected, "the AfterConnect hook ran")
}

func TestOnCreate(t *testing.T) {
	ctx := context.Background()
	var calls int
	p, err := pool.New(ctx, testdb.URL(t), pool.WithOnCreate(func(ctx context.Context, p *pgxpool.Pool) error {
		calls++
		return p.Ping(ctx)
	}))
	require.NoError(t, err)
	p.Close()
	assert.Equal(t, 1, calls)

	boom := errors.New("boom")
	_, err = pool.New(ctx, testdb.URL(t), pool.WithOnCreate(func(context.Context, *pgxpool.Pool) error { return boom }))
	assert.ErrorIs(t, err, boom)
}

func TestNewIsLazy(t *testing.T) {
	// Nothing listens on port 1: New still succeeds, the first use fails.
	p, err := pool.New(context.Background(), "postgres://app:s3cretpw@127.0.0.1:1/app?connect_timeout=2")
	require.NoError(t, err)
	defer p.Close()
	err = p.Ping(context.Background())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cretpw")
}
