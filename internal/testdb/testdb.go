// Package testdb gives every test package its own fresh PostgreSQL database.
//
// The server is, in order: DATABASE_URL; the local server at 127.0.0.1:5432 as user
// postgres; a throwaway cluster started from the installed PostgreSQL binaries. When
// none can be had the tests fail with a message saying how to get one: they never skip.
//
//	func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
//	func TestX(t *testing.T) { pool := testdb.Pool(t); ... }
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/internal/pgserver"
)

// localURL is the server the developers' machines and CI run.
const localURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ChildEnv names the variable through which a test re-executing its own binary hands
// the package database to the child, so the child uses it instead of making another.
const ChildEnv = "TENANT_TESTDB_PACKAGE_URL"

var (
	adminURL string // the server, database postgres (or DATABASE_URL's database)
	dbURL    string // this package's database
)

// Main runs the package's tests against a database created for them and dropped
// afterwards. It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	if u := os.Getenv(ChildEnv); u != "" {
		dbURL = u
		return m.Run()
	}
	ctx := context.Background()
	admin, conn, stop, err := server(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testdb: no PostgreSQL for the tests: %v\n"+
			"testdb: set DATABASE_URL to a server you can reach, start the local one (pg_ctlcluster 15 main start), or %s\n", err, pgserver.InstallHint)
		return 1
	}
	defer stop()
	adminURL = admin
	// One connection for the setup and one for the teardown: a backend costs a fork
	// and the server's start-up work, and every test package does this.
	dropOrphans(ctx, conn)
	name, err := createDatabase(ctx, conn)
	_ = conn.Close(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testdb: create database: %v\n", err)
		return 1
	}
	dbURL = withDatabase(adminURL, name)
	code := m.Run()
	if err := withAdmin(ctx, func(c *pgx.Conn) error { return dropDatabase(ctx, c, name) }); err != nil {
		fmt.Fprintf(os.Stderr, "testdb: drop database %s: %v\n", name, err)
	}
	return code
}

// URL is the connection string of this package's database.
func URL(t testing.TB) string {
	t.Helper()
	if dbURL == "" {
		t.Fatal("testdb: call testdb.Main from TestMain")
	}
	return dbURL
}

// DatabaseURL is URL for Example functions, which have no testing.TB. It panics
// outside a package whose TestMain calls Main.
func DatabaseURL() string {
	if dbURL == "" {
		panic("testdb: call testdb.Main from TestMain")
	}
	return dbURL
}

// PackageURL is URL without a test: the package's database, or "" when no TestMain
// called Main (for a public helper to say so in its own words).
func PackageURL() string { return dbURL }

// Pool opens a pool on this package's database, closed when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return PoolFor(t, URL(t))
}

// PoolFor opens a pool on the given connection string, closed when the test ends.
func PoolFor(t testing.TB, connString string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), connString)
	if err != nil {
		t.Fatalf("testdb: pool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// NewDatabase creates one more fresh database for a test that needs a pristine one
// (no extensions, other owner) and drops it when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	if adminURL == "" {
		t.Fatal("testdb: NewDatabase is not available in a re-executed child")
	}
	ctx := context.Background()
	var name string
	err := withAdmin(ctx, func(c *pgx.Conn) (err error) {
		name, err = createDatabase(ctx, c)
		return err
	})
	if err != nil {
		t.Fatalf("testdb: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := withAdmin(ctx, func(c *pgx.Conn) error { return dropDatabase(ctx, c, name) }); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	return withDatabase(adminURL, name)
}

// Role creates a LOGIN role with no privileges beyond the defaults (dropped, with what
// it owns in connString's database, when the test ends) and returns connString rewritten
// to log in as it. It returns the role's name too, for GRANTs.
func Role(t testing.TB, connString string) (string, string) {
	t.Helper()
	name := "tenant_test_role_" + randomHex(4)
	password := randomHex(8)
	ctx := context.Background()
	if err := exec(ctx, connString, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pgx.Identifier{name}.Sanitize(), password)); err != nil {
		t.Fatalf("testdb: create role: %v", err)
	}
	t.Cleanup(func() {
		q := fmt.Sprintf("DROP OWNED BY %[1]s CASCADE; DROP ROLE %[1]s", pgx.Identifier{name}.Sanitize())
		if err := exec(ctx, connString, q); err != nil {
			t.Errorf("testdb: drop role: %v", err)
		}
	})
	u, err := url.Parse(connString)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	u.User = url.UserPassword(name, password)
	return u.String(), name
}

// server finds the server (see the package comment) and returns a connection to it
// as well, for Main's setup to use and close.
func server(ctx context.Context) (admin string, conn *pgx.Conn, stop func(), err error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		conn, err = connect(ctx, u)
		return u, conn, func() {}, err
	}
	if conn, err = connect(ctx, localURL); err == nil {
		return localURL, conn, func() {}, nil
	}
	srv, err := pgserver.Start(ctx, pgserver.Options{})
	if err != nil {
		return "", nil, nil, fmt.Errorf("nothing at 127.0.0.1:5432, and a throwaway cluster did not start: %w", err)
	}
	if conn, err = connect(ctx, srv.URL); err != nil {
		_ = srv.Stop()
		return "", nil, nil, err
	}
	return srv.URL, conn, func() { _ = srv.Stop() }, nil
}

func connect(ctx context.Context, connString string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return pgx.Connect(ctx, connString)
}

// withConn runs fn on a connection of its own to connString.
func withConn(ctx context.Context, connString string, fn func(*pgx.Conn) error) error {
	c, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return fn(c)
}

// withAdmin runs fn on a connection of its own to the server's admin database.
func withAdmin(ctx context.Context, fn func(*pgx.Conn) error) error {
	return withConn(ctx, adminURL, fn)
}

func exec(ctx context.Context, connString, sql string) error {
	return withConn(ctx, connString, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, sql)
		return err
	})
}

// owner labels a database with the process that made it, so a later run can tell a
// leftover (its maker died: a panic or a kill skips the cleanup) from a database in use.
func owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("tenant testdb host=%s pid=%d", host, os.Getpid())
}

func createDatabase(ctx context.Context, c *pgx.Conn) (string, error) {
	name := "tenant_test_" + packageName() + "_" + randomHex(4)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := c.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", err
	}
	// Commits need not wait for the disk, as on the throwaway cluster (pgserver): the
	// database is dropped after the tests, and a test that crashes the server starts
	// a cluster of its own.
	_, err := c.Exec(ctx, "COMMENT ON DATABASE "+ident+" IS "+quoteLiteral(owner())+
		"; ALTER DATABASE "+ident+" SET synchronous_commit = off")
	return name, err
}

// dropOrphans drops test databases made on this host by processes that are gone.
func dropOrphans(ctx context.Context, c *pgx.Conn) {
	rows, err := c.Query(ctx, `SELECT d.datname::text, coalesce(shobj_description(d.oid, 'pg_database'), '')
		FROM pg_database d WHERE d.datname LIKE 'tenant\_test\_%'`)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var v [2]string
		return v, r.Scan(&v[0], &v[1])
	})
	if err != nil {
		return
	}
	host, _ := os.Hostname()
	for _, n := range names {
		var h string
		var pid int
		if _, err := fmt.Sscanf(n[1], "tenant testdb host=%s pid=%d", &h, &pid); err != nil || h != host {
			continue
		}
		if syscall.Kill(pid, 0) == nil || pid == os.Getpid() {
			continue // its maker still runs
		}
		_ = dropDatabase(ctx, c, n[0])
	}
	_, _ = c.Exec(ctx, dropLostRolesSQL)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func dropDatabase(ctx context.Context, c *pgx.Conn, name string) error {
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return err
	}
	_, err := c.Exec(ctx, dropLostRolesSQL)
	return err
}

// dropLostRolesSQL drops the tenant roles (tenant.Config.Roles, named
// tenant_<database OID>_...) whose database is gone: roles are cluster-wide, and a
// test that stopped before its cleanup, or an application's test that never dropped
// its tenants, leaves them behind. Their grants went with the database.
const dropLostRolesSQL = `DO $$ DECLARE r text; BEGIN
	FOR r IN SELECT rolname FROM pg_catalog.pg_roles WHERE rolname ~ '^tenant_[0-9]+_'
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE oid::text = split_part(rolname, '_', 2))
	LOOP
		PERFORM pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = r;
		BEGIN
			EXECUTE format('DROP ROLE IF EXISTS %I', r);
		EXCEPTION WHEN dependent_objects_still_exist THEN NULL; -- granted something elsewhere: not ours to drop
		END;
	END LOOP; END $$`

// withDatabase swaps the database of a connection string (URL or keyword/value form).
func withDatabase(connString, db string) string {
	if u, err := url.Parse(connString); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + db
		return u.String()
	}
	return connString + " dbname=" + db
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// packageName derives a readable database name part from the test binary ("schema.test").
func packageName() string {
	base := strings.TrimSuffix(strings.ToLower(filepath.Base(os.Args[0])), ".test")
	base = nonWord.ReplaceAllString(base, "_")
	if len(base) > 20 {
		base = base[:20]
	}
	return base
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
