package pool_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
)

func TestRegistryOnePoolPerDSN(t *testing.T) {
	ctx := context.Background()
	var created atomic.Int32
	r := pool.NewRegistry(pool.WithOnCreate(func(context.Context, *pgxpool.Pool) error { created.Add(1); return nil }))
	defer r.Close()
	dsnA := testdb.URL(t)
	dsnB := testdb.URL(t) + "&application_name=b"

	const n = 32
	got := make([]*pgxpool.Pool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			dsn := dsnA
			if i%2 == 1 {
				dsn = dsnB
			}
			p, err := r.Get(ctx, dsn)
			assert.NoError(t, err)
			got[i] = p
		})
	}
	wg.Wait()
	assert.Equal(t, int32(2), created.Load(), "one pool per DSN, however many callers at once")
	for i := 2; i < n; i++ {
		assert.Same(t, got[i%2], got[i])
	}
	assert.NotSame(t, got[0], got[1])
	require.NoError(t, got[0].Ping(ctx))
	require.NoError(t, got[1].Ping(ctx))
}

func TestRegistryInvalidate(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	r := pool.NewRegistry(pool.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer r.Close()
	dsn := testdb.URL(t)

	first, err := r.Get(ctx, dsn)
	require.NoError(t, err)
	assert.True(t, r.Invalidate(dsn))
	assert.Error(t, first.Ping(ctx), "an invalidated pool is closed")
	assert.False(t, r.Invalidate(dsn), "nothing left to invalidate")

	second, err := r.Get(ctx, dsn)
	require.NoError(t, err)
	assert.NotSame(t, first, second)
	require.NoError(t, second.Ping(ctx))
	assert.Contains(t, logs.String(), "pool invalidated")
}

func TestRegistryClose(t *testing.T) {
	ctx := context.Background()
	r := pool.NewRegistry()
	p, err := r.Get(ctx, testdb.URL(t))
	require.NoError(t, err)
	r.Close()
	assert.Error(t, p.Ping(ctx))
	_, err = r.Get(ctx, testdb.URL(t))
	assert.ErrorIs(t, err, pool.ErrClosed)
}

func TestRegistryFailedNewIsNotKept(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	r := pool.NewRegistry(pool.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer r.Close()
	_, err := r.Get(ctx, "postgres://app:s3cretpw@db:bad/app")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cretpw")
	_, err = r.Get(ctx, "postgres://app:s3cretpw@db:bad/app")
	require.Error(t, err, "tried again, failed again")
	assert.False(t, r.Invalidate("postgres://app:s3cretpw@db:bad/app"))

	p, err := r.Get(ctx, testdb.URL(t)+"&password=s3cretpw")
	require.NoError(t, err)
	require.NoError(t, p.Ping(ctx))
	assert.Contains(t, logs.String(), "pool created")
	assert.NotContains(t, logs.String(), "s3cretpw", "log lines carry redacted DSNs")
}

// Concurrent Get, Invalidate and Close under -race.
func TestRegistryConcurrentInvalidate(t *testing.T) {
	ctx := context.Background()
	r := pool.NewRegistry()
	dsn := testdb.URL(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 20 {
				if i%4 == 0 {
					r.Invalidate(dsn)
					continue
				}
				p, err := r.Get(ctx, dsn)
				if assert.NoError(t, err) {
					assert.NotNil(t, p)
				}
			}
		})
	}
	wg.Wait()
	r.Close()
}
