package pgserver_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/pgserver"
)

// The fallback the test harness and `make run` rely on: a private cluster from the
// installed binaries, on its own port, gone after Stop.
func TestStartQueryStop(t *testing.T) {
	ctx := context.Background()
	srv, err := pgserver.Start(ctx, pgserver.Options{})
	require.NoError(t, err, pgserver.InstallHint)
	conn, err := pgx.Connect(ctx, srv.URL)
	require.NoError(t, err)
	var user string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_user").Scan(&user))
	assert.Equal(t, "postgres", user)
	require.NoError(t, conn.Close(ctx))

	require.NoError(t, srv.Stop())
	_, err = os.Stat(srv.Dir)
	assert.True(t, os.IsNotExist(err), "a temporary data directory is removed")
}

// A named directory keeps its data across restarts (the example app's demo database).
func TestKeepsNamedDirectory(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if os.Geteuid() == 0 {
		// t.TempDir is private to root; the postgres OS user must reach the data dir.
		require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
		require.NoError(t, os.Chmod(filepath.Dir(filepath.Dir(dir)), 0o755))
	}
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir})
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, srv.URL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (x int)")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, srv.Stop())

	srv, err = pgserver.Start(ctx, pgserver.Options{Dir: dir})
	require.NoError(t, err)
	defer func() { assert.NoError(t, srv.Stop()) }()

	// A second Start on the same directory joins the running cluster and leaves it be.
	again, err := pgserver.Start(ctx, pgserver.Options{Dir: dir})
	require.NoError(t, err)
	assert.Equal(t, srv.URL, again.URL)
	require.NoError(t, again.Stop())
	c2, err := pgx.Connect(ctx, srv.URL)
	require.NoError(t, err, "still running after the joiner's Stop")
	require.NoError(t, c2.Close(ctx))
	conn, err = pgx.Connect(ctx, srv.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&n))
	assert.Equal(t, 0, n)
}

func TestFindBinaries(t *testing.T) {
	dir, err := pgserver.FindBinaries()
	require.NoError(t, err, pgserver.InstallHint)
	assert.FileExists(t, filepath.Join(dir, "initdb"))
	assert.FileExists(t, filepath.Join(dir, "pg_ctl"))
}

// Restart in either mode keeps what was committed, with synchronous_commit on even
// through a crash, and the port stays the same.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	srv, err := pgserver.Start(ctx, pgserver.Options{Settings: []string{"synchronous_commit=on"}})
	require.NoError(t, err, pgserver.InstallHint)
	defer func() { assert.NoError(t, srv.Stop()) }()
	query := func(sql string) int {
		conn, err := pgx.Connect(ctx, srv.URL)
		require.NoError(t, err)
		defer conn.Close(ctx)
		var n int
		require.NoError(t, conn.QueryRow(ctx, sql).Scan(&n))
		return n
	}
	conn, err := pgx.Connect(ctx, srv.URL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (x int)")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	assert.Equal(t, 1, query("SELECT count(*) FROM pg_settings WHERE name = 'synchronous_commit' AND setting = 'on'"))
	for i, mode := range []string{"fast", "immediate"} {
		query("WITH i AS (INSERT INTO kept VALUES (1) RETURNING x) SELECT count(*) FROM i")
		require.NoError(t, srv.Restart(ctx, mode))
		assert.Equal(t, i+1, query("SELECT count(*) FROM kept"), mode)
	}
	assert.Error(t, srv.Restart(ctx, "now"))
}
