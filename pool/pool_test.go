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

func TestDSNSettingsWinOverDefaults(t *testing.T) {
	cfg, err := pool.ParseConfig(testdb.URL(t) + "&pool_max_conn_lifetime=5m&pool_max_conn_idle_time=1m&pool_max_conn_lifetime_jitter=0s&pool_max_conns=7")
	require.NoError(t, err)
	assert.Equal(t, 5*time.Minute, cfg.MaxConnLifetime)
	assert.Equal(t, time.Minute, cfg.MaxConnIdleTime)
	assert.Equal(t, time.Duration(0), cfg.MaxConnLifetimeJitter)
	assert.Equal(t, int32(7), cfg.MaxConns)

	kv, err := pool.ParseConfig("host=127.0.0.1 user=postgres pool_max_conn_lifetime = 2m")
	require.NoError(t, err)
	assert.Equal(t, 2*time.Minute, kv.MaxConnLifetime)
	assert.Equal(t, pool.DefaultMaxConnLifetimeJitter, kv.MaxConnLifetimeJitter)
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
