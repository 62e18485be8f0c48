package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
)

type result struct {
	code           int
	stdout, stderr string
}

func runWith(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut strings.Builder
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func dbEnv(t *testing.T) map[string]string { return map[string]string{"DATABASE_URL": testdb.URL(t)} }

func TestTenantsCommands(t *testing.T) {
	env := dbEnv(t)
	t.Cleanup(func() { runWith(t, env, "tenants", "drop", "cmd-a", "cmd-b", "cmdx") }) // each name on its own

	r := runWith(t, env, "tenants", "create", "cmd-a", "cmd-b", "cmdx")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "created cmd-a\ncreated cmd-b\ncreated cmdx\n", r.stdout)

	r = runWith(t, env, "tenants", "list", "--namespace", "cmd")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "cmd-a\ncmd-b\n", r.stdout)
	r = runWith(t, env, "tenants", "list")
	assert.Contains(t, r.stdout, "cmdx\n")

	r = runWith(t, env, "tenants", "create", "cmd-a", "cmd-c")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `"cmd-a": schema already exists`)
	assert.Equal(t, "created cmd-c\n", r.stdout, "the other names still get done")

	r = runWith(t, env, "migrate")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `^0 migrated, \d+ already current, 0 failed, 0 locked, in `, r.stdout, "one query found them current")

	r = runWith(t, env, "tenants", "suspend", "cmd-b", "cmd-nope")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "suspended cmd-b\n", r.stdout)
	assert.Contains(t, r.stderr, `"cmd-nope": schema does not exist`)
	r = runWith(t, env, "tenants", "resume", "cmd-b")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "resumed cmd-b\n", r.stdout)

	r = runWith(t, env, "tenants", "drop", "cmd-b")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "dropped cmd-b\n", r.stdout)
	r = runWith(t, env, "tenants", "drop", "cmd-b", "cmd-c")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `"cmd-b": schema does not exist`)
	assert.Equal(t, "dropped cmd-c\n", r.stdout)
	r = runWith(t, env, "tenants", "list", "--namespace", "cmd")
	assert.Equal(t, "cmd-a\n", r.stdout)
}

// Schemas the app did not create are never listed, migrated or dropped; schemas an
// earlier release made are adopted by "tenants adopt" and are tenants from then on.
func TestForeignAndLegacySchemas(t *testing.T) {
	ctx := context.Background()
	env := dbEnv(t)
	admin := testdb.Pool(t)
	_, err := admin.Exec(ctx, `CREATE SCHEMA cmd_audit; CREATE TABLE cmd_audit.log (line text);
		CREATE SCHEMA cmd_legacy; CREATE TABLE cmd_legacy.tenant_migrations (version bigint PRIMARY KEY, name text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(ctx, "DROP SCHEMA IF EXISTS cmd_audit, cmd_legacy CASCADE") })

	r := runWith(t, env, "tenants", "list")
	assert.NotContains(t, r.stdout, "cmd_audit")
	assert.NotContains(t, r.stdout, "cmd_legacy")
	r = runWith(t, env, "tenants", "drop", "cmd_audit")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "schema exists but is not a tenant")
	r = runWith(t, env, "migrate")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "cmd_audit")
	var tables int
	require.NoError(t, admin.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'cmd_audit'").Scan(&tables))
	assert.Equal(t, 1, tables, "nothing was created in it, nothing dropped")

	r = runWith(t, env, "tenants", "adopt", "cmd_audit")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "not a tenant")
	r = runWith(t, env, "tenants", "adopt")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "adopted cmd_legacy\n")
	r = runWith(t, env, "tenants", "list")
	assert.Contains(t, r.stdout, "cmd_legacy\n")
	r = runWith(t, env, "tenants", "adopt")
	assert.Equal(t, "nothing to adopt\n", r.stdout)
}

// Invalid names are refused with the validation message, and nothing is created, not
// even the valid names given with them.
func TestTenantsCreateRefusesInvalidNames(t *testing.T) {
	env := dbEnv(t)
	r := runWith(t, env, "tenants", "create", "cmd-ok", "Bad Name", "pg_x", "public")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `invalid schema name "Bad Name": name may only contain a-z, 0-9, '_' and '-'`)
	assert.Contains(t, r.stderr, `invalid schema name "pg_x": name starts with pg_`)
	assert.Contains(t, r.stderr, `invalid schema name "public": name is reserved`)
	assert.Empty(t, r.stdout)
	r = runWith(t, env, "tenants", "list")
	assert.NotContains(t, r.stdout, "cmd-ok")

	r = runWith(t, env, "tenants", "drop", "ok", "a--b")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "contains '--'")
}

func TestUsageErrors(t *testing.T) {
	env := dbEnv(t)
	for _, args := range [][]string{{"frobnicate"}} {
		assert.Equal(t, 2, runWith(t, env, args...).code)
	}
	for _, args := range [][]string{{"tenants"}, {"tenants", "rename"}, {"tenants", "create"}, {"tenants", "list", "--bogus"}} {
		r := runWith(t, env, args...)
		assert.Equal(t, 1, r.code, args)
		assert.NotEmpty(t, r.stderr)
	}
	r := runWith(t, env, "help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "tenants create NAME...")
}

// lines hands over what serve prints, line by line, while it runs.
type lines struct {
	mu sync.Mutex
	w  *io.PipeWriter
}

func (l *lines) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.w.Write(p) }

// startServe runs serve in the background and returns its base URL and a stop func
// that cancels it (Ctrl-C) and returns the exit code.
func startServe(t *testing.T, env map[string]string) (string, func() int) {
	t.Helper()
	base, _, stop := startServeBanner(t, env)
	return base, stop
}

// startServeBanner is startServe that also returns the banner serve printed, up to
// its last line, the one that says what Ctrl-C stops.
func startServeBanner(t *testing.T, env map[string]string) (string, string, func() int) {
	t.Helper()
	env["ADDR"] = "127.0.0.1:0"
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, &lines{w: pw}, os.Stderr)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	addr := regexp.MustCompile(`serving on (127\.0\.0\.1:\d+)`)
	var base string
	var banner strings.Builder
	for sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if m := addr.FindStringSubmatch(sc.Text()); m != nil {
			base = "http://" + m[1]
		}
		if strings.Contains(sc.Text(), "Ctrl-C") {
			break
		}
	}
	require.NotEmpty(t, base, "serve did not start")
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return base, banner.String(), func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop")
			return -1
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeWithDatabaseURL(t *testing.T) {
	env := dbEnv(t)
	base, stop := startServe(t, env)
	code, body := get(t, base+"/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok", body)
	code, _ = get(t, base+"/t/acme/documents")
	assert.Equal(t, 404, code, "with DATABASE_URL no demo tenants are made")
	assert.Equal(t, 0, stop(), "Ctrl-C ends serve cleanly")
}

func TestServeAutoCreate(t *testing.T) {
	env := dbEnv(t)
	env["AUTO_CREATE"] = "1"
	t.Cleanup(func() { runWith(t, dbEnv(t), "tenants", "drop", "auto_made") })
	base, stop := startServe(t, env)
	code, body := get(t, base+"/t/auto_made/documents")
	assert.Equal(t, 200, code, body)
	assert.Equal(t, "[]\n", body)
	assert.Equal(t, 0, stop())
}

// What `make run` does: no DATABASE_URL, so a private PostgreSQL under DATA_DIR, demo
// tenants, and Ctrl-C stops both.
func TestServeDemoOnPrivateServer(t *testing.T) {
	tmp := t.TempDir()
	// As root the server runs as postgres, which must reach the data directory.
	require.NoError(t, os.Chmod(tmp, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(tmp), 0o755))
	dataDir := filepath.Join(tmp, "data")
	base, stop := startServe(t, map[string]string{"DATA_DIR": dataDir})

	code, body := get(t, base+"/t/acme/documents")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"title":"Welcome to Acme"`)
	code, body = get(t, base+"/t/globex/")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "Globex employee handbook")

	// Commands run next to a running serve join its database.
	r := runWith(t, map[string]string{"DATA_DIR": dataDir}, "tenants", "list")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "acme\nglobex\n", r.stdout)

	assert.Equal(t, 0, stop())
	_, err := os.Stat(filepath.Join(dataDir, "postgres", "postmaster.pid"))
	assert.True(t, os.IsNotExist(err), "the private PostgreSQL stopped with the app")

	// A second start keeps the data and does not seed twice.
	base, stop = startServe(t, map[string]string{"DATA_DIR": dataDir})
	_, body = get(t, base+"/t/acme/documents")
	assert.Equal(t, 3, strings.Count(body, `"id"`))
	assert.Equal(t, 0, stop())
}

// ISOLATION sets the isolation level of request transactions; a level PostgreSQL does
// not have is refused before anything runs.
func TestIsolationSetting(t *testing.T) {
	env := dbEnv(t)
	env["ISOLATION"] = "snapshot"
	r := runWith(t, env, "serve")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "ISOLATION=snapshot")
	for i, v := range []string{"", "serializable", "repeatable-read", "READ_COMMITTED", " read committed "} {
		env["ISOLATION"] = v
		name := fmt.Sprintf("iso_%d", i)
		r := runWith(t, env, "tenants", "create", name)
		assert.Equal(t, 0, r.code, "%q: %s", v, r.stderr)
		runWith(t, env, "tenants", "drop", name)
	}
	level, err := isolation("read-committed")
	require.NoError(t, err)
	assert.Equal(t, pgx.ReadCommitted, level)
}
