package pool_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/pool"
)

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"postgres://app:s3cret@db:5432/app":                "postgres://app:xxxxx@db:5432/app",
		"postgres://app@db/app?password=s3cret":            "postgres://app@db/app?password=xxxxx",
		"postgresql://app:s%40cret@db/app":                 "postgresql://app:xxxxx@db/app",
		"host=db user=app password=s3cret dbname=app":      "host=db user=app password=xxxxx dbname=app",
		"host=db password='s3 cret' dbname=app":            "host=db password=xxxxx dbname=app",
		"postgres://app:s3cret@db:notaport/app":            "postgres://app:xxxxx@db:notaport/app",
		"postgres://db/app":                                "postgres://db/app",
		"host=db sslpassword=s3cret password = s3cret x=1": "host=db sslpassword=xxxxx password=xxxxx x=1",
	}
	for in, want := range tests {
		assert.Equal(t, want, pool.Redact(in), in)
	}
}

// Malformed connection strings: pgx and net/url quote the input in their messages;
// ours never carry the password.
func TestParseErrorsHidePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://app:s3cretpw@db:notaport/app",
		"postgres://app:s3cretpw@db/app?sslmode=bogus",
		"postgres://app:s3cretpw@[::1/app",
		"host=db password=s3cretpw port=notaport",
		"host=db password='s3cretpw",
		"postgres://app:s3cretpw@db/app?pool_max_conns=many",
		"postgres://app:s3cret%70w@db:x/app",
	} {
		t.Run(dsn, func(t *testing.T) {
			_, err := pool.New(context.Background(), dsn)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "s3cret")
			var ce *pool.ConfigError
			assert.True(t, errors.As(err, &ce))
			var pce *pgconn.ParseConfigError
			assert.True(t, errors.As(err, &pce), "pgx's error stays reachable")
		})
	}
}

func TestOnCreateErrorHidesPassword(t *testing.T) {
	_, err := pool.New(context.Background(), "postgres://app:s3cretpw@127.0.0.1:1/app?connect_timeout=1",
		pool.WithOnCreate(func(ctx context.Context, p *pgxpool.Pool) error { return p.Ping(ctx) }))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cretpw")
}
