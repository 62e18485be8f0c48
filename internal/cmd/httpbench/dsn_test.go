package main

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDSNRewrites(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:p@db.example:6543/app?sslmode=disable",
		"host=db.example port=6543 user=u password=p dbname=app sslmode=disable",
	} {
		t.Run(dsn[:8], func(t *testing.T) {
			network, addr, err := upstream(dsn)
			require.NoError(t, err)
			assert.Equal(t, "tcp", network)
			assert.Equal(t, "db.example:6543", addr)

			out := withParam(withHostPort(withDatabase(dsn, "tenant_bench"), "127.0.0.1", 40001), "pool_max_conns", "8")
			cfg, err := pgconn.ParseConfig(out)
			require.NoError(t, err)
			assert.Equal(t, "127.0.0.1", cfg.Host)
			assert.EqualValues(t, 40001, cfg.Port)
			assert.Equal(t, "tenant_bench", cfg.Database)
			assert.Equal(t, "u", cfg.User)
			assert.Equal(t, "p", cfg.Password)
			assert.Equal(t, "8", cfg.RuntimeParams["pool_max_conns"])
		})
	}
}

func TestUpstreamUnixSocket(t *testing.T) {
	network, addr, err := upstream("host=/var/run/postgresql port=5432 user=u")
	require.NoError(t, err)
	assert.Equal(t, "unix", network)
	assert.Equal(t, "/var/run/postgresql/.s.PGSQL.5432", addr)
}
