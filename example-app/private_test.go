package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/pgserver"
)

// privateDataDir is a DATA_DIR the private server (as root, run by the postgres OS
// user) can reach.
func privateDataDir(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	require.NoError(t, os.Chmod(tmp, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(tmp), 0o755))
	return filepath.Join(tmp, "data")
}

// A serve killed with SIGKILL leaves its PostgreSQL running and its owner file behind.
// The next serve must not join it and claim that Ctrl-C stops it: it takes the server
// over, says so, and stops it on Ctrl-C.
func TestServeTakesOverAnOrphanedServer(t *testing.T) {
	dataDir := privateDataDir(t)
	pgDir := filepath.Join(dataDir, "postgres")
	_, err := pgserver.Start(context.Background(), pgserver.Options{Dir: pgDir})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = pgserver.StopDir(context.Background(), pgDir) })
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, ownerFile), []byte(strconv.Itoa(deadPID(t))+"\n"), 0o644))

	base, banner, stop := startServeBanner(t, map[string]string{"DATA_DIR": dataDir})
	assert.Contains(t, banner, "left running by a serve that did not stop")
	assert.Contains(t, banner, "Ctrl-C stops the app and its PostgreSQL")
	code, _ := get(t, base+"/t/acme/documents")
	assert.Equal(t, 200, code)

	// A second serve beside it joins, and says whose PostgreSQL it is.
	_, banner2, stop2 := startServeBanner(t, map[string]string{"DATA_DIR": dataDir})
	assert.Contains(t, banner2, "its PostgreSQL belongs to the serve running as process "+strconv.Itoa(os.Getpid()))
	assert.Equal(t, 0, stop2())
	assert.True(t, pgserver.Running(pgDir), "the second serve left the server alone")

	// stop refuses while the owning serve runs.
	r := runWith(t, map[string]string{"DATA_DIR": dataDir}, "stop")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "owns the PostgreSQL")

	assert.Equal(t, 0, stop())
	assert.False(t, pgserver.Running(pgDir), "Ctrl-C stopped the server it took over")
	_, err = os.Stat(filepath.Join(dataDir, ownerFile))
	assert.True(t, os.IsNotExist(err), "the owner file goes with it")
}

// stop ends a private server that nobody owns any more, and says when there is none.
func TestStopCommand(t *testing.T) {
	dataDir := privateDataDir(t)
	pgDir := filepath.Join(dataDir, "postgres")
	env := map[string]string{"DATA_DIR": dataDir}
	r := runWith(t, env, "stop")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "no private PostgreSQL running under "+pgDir+"\n", r.stdout)

	_, err := pgserver.Start(context.Background(), pgserver.Options{Dir: pgDir})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = pgserver.StopDir(context.Background(), pgDir) })
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, ownerFile), []byte(strconv.Itoa(deadPID(t))+"\n"), 0o644))
	r = runWith(t, env, "stop")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "stopped the private PostgreSQL under "+pgDir+"\n", r.stdout)
	assert.False(t, pgserver.Running(pgDir))

	// An owner file whose process id now belongs to another program (after a reboot,
	// say: here init's) is stale too.
	_, err = pgserver.Start(context.Background(), pgserver.Options{Dir: pgDir})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, ownerFile), []byte("1\n"), 0o644))
	r = runWith(t, env, "stop")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "stopped the private PostgreSQL under "+pgDir+"\n", r.stdout)
	assert.False(t, pgserver.Running(pgDir))
}

// deadPID is the id of a process that has exited: a serve that was killed.
func deadPID(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	require.NoError(t, err)
	_, err = p.Wait()
	require.NoError(t, err)
	return p.Pid
}

// The owner file names a serve only while that process runs this program: a dead
// process, or a live one of another program that took the id over, owns nothing.
func TestOwner(t *testing.T) {
	other, err := os.StartProcess("/bin/sleep", []string{"sleep", "30"}, &os.ProcAttr{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Kill(); _, _ = other.Wait() })
	for _, tt := range []struct {
		name    string
		content string
		pid     int
		alive   bool
	}{
		{"this program, whatever its executable's name", strconv.Itoa(os.Getpid()), os.Getpid(), true},
		{"another program", strconv.Itoa(other.Pid) + "\n", other.Pid, false},
		{"a process that ended", strconv.Itoa(deadPID(t)), -1, false},
		{"not a process id", "acme", 0, false},
		{"no owner file", "", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.content != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, ownerFile), []byte(tt.content), 0o644))
			}
			pid, alive := owner(dir)
			if tt.pid >= 0 {
				assert.Equal(t, tt.pid, pid)
			}
			assert.Equal(t, tt.alive, alive)
		})
	}
}

// A busy port fails at once, before any database starts, and says how to pick another.
func TestServeBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	dataDir := privateDataDir(t)
	r := runWith(t, map[string]string{"DATA_DIR": dataDir, "ADDR": ln.Addr().String()}, "serve")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "address already in use")
	assert.Contains(t, r.stderr, "ADDR=:8081 make run")
	assert.False(t, pgserver.Running(filepath.Join(dataDir, "postgres")), "no database was started for nothing")
}

// On DATABASE_URL serve makes no tenants, so the banner does not point at acme before
// it exists: it says how to make the demo tenants; after seed it points at them.
func TestServeOnDatabaseURLSaysHowToSeed(t *testing.T) {
	env := dbEnv(t)
	t.Cleanup(func() { runWith(t, dbEnv(t), "tenants", "drop", "acme", "globex") })
	base, banner, stop := startServeBanner(t, env)
	assert.Contains(t, banner, "example-app seed makes the demo tenants")
	assert.NotContains(t, banner, "acme.localhost")
	assert.Contains(t, banner, "  Ctrl-C stops the app\n")
	code, _ := get(t, base+"/t/acme/documents")
	assert.Equal(t, 404, code)
	assert.Equal(t, 0, stop())

	r := runWith(t, env, "seed")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "demo tenants ready: acme, globex\n", r.stdout)
	base, banner, stop = startServeBanner(t, env)
	assert.NotContains(t, banner, "example-app seed")
	assert.Contains(t, banner, "/t/globex/")
	code, body := get(t, base+"/t/acme/documents")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "Welcome to Acme")
	assert.Equal(t, 0, stop())
}
