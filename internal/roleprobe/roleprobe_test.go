package roleprobe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// The roles of a fixture, by placeholder. acme and globex are tenants: a LOGIN role
// each, with USAGE on the schema of the same name and DML on its tables. app is the
// shared login role of the SET ROLE mechanism (NOINHERIT, member of both tenants).
// owner owns the tenant schemas, as the migrations' role would. tenants is the group
// every tenant role is in, holding the grants on shared tables.
var fixtureRoles = []string{"owner", "tenants", "acme", "globex", "app"}

// fixture is one test's roles, schemas and tables, named uniquely for the run.
type fixture struct {
	prefix string
	names  map[string]string // placeholder -> role or object name
	repl   *strings.Replacer
}

// password is a tenant role's password: fixed per role name, as a derived one would be.
func password(role string) string { return "pw-" + role }

var dropOrphansOnce sync.Once

// newFixture makes acme and globex (one invoice each: acme 7, globex 42), the registry
// (not granted to tenants) and a shared table plans (SELECT granted to the tenants
// group), and drops it all when the test ends.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	admin := connect(t, testdb.URL(t))
	dropOrphansOnce.Do(func() { dropOrphanRoles(ctx, admin) })
	f := &fixture{prefix: "tenant_probe_" + randomHex(4), names: map[string]string{}}
	for _, r := range append(fixtureRoles, "registry", "plans", "later", "stranger", "auth", "nobody") {
		f.names[r] = f.prefix + "_" + r
	}
	var pairs []string
	for k, v := range f.names {
		pairs = append(pairs, "{"+k+"}", pgx.Identifier{v}.Sanitize(), "{"+k+":lit}", "'"+v+"'", "{"+k+":name}", v)
	}
	pairs = append(pairs, "{prefix:lit}", "'"+f.prefix+`\_%'`)
	f.repl = strings.NewReplacer(pairs...)
	t.Cleanup(func() { f.drop(t) })

	var sql strings.Builder
	comment := fmt.Sprintf("'tenant roleprobe host=%s pid=%d'", hostname(), os.Getpid())
	for _, r := range fixtureRoles {
		login := "NOLOGIN"
		switch r {
		case "acme", "globex":
			login = "LOGIN PASSWORD '" + password(f.names[r]) + "' IN ROLE {tenants}"
		case "app":
			login = "LOGIN NOINHERIT IN ROLE {acme}, {globex}"
		}
		fmt.Fprintf(&sql, "CREATE ROLE {%s} %s; COMMENT ON ROLE {%s} IS %s;\n", r, login, r, comment)
	}
	sql.WriteString(`CREATE TABLE public.{registry} (name text PRIMARY KEY);
		INSERT INTO public.{registry} VALUES ({acme:lit}), ({globex:lit});
		CREATE TABLE public.{plans} (id int PRIMARY KEY, name text);
		INSERT INTO public.{plans} VALUES (1, 'free');
		GRANT SELECT ON public.{plans} TO {tenants};
	`)
	for tenant, amount := range map[string]int{"acme": 7, "globex": 42} {
		fmt.Fprintf(&sql, `CREATE SCHEMA {%[1]s} AUTHORIZATION {owner};
			GRANT USAGE ON SCHEMA {%[1]s} TO {%[1]s};
			ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {%[1]s}
				GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {%[1]s};
			ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {%[1]s}
				GRANT USAGE, SELECT ON SEQUENCES TO {%[1]s};
			SET ROLE {owner};
			CREATE TABLE {%[1]s}.invoices (id serial PRIMARY KEY, amount int NOT NULL);
			INSERT INTO {%[1]s}.invoices (id, amount) VALUES (%[2]d, %[2]d);
			RESET ROLE;
		`, tenant, amount)
	}
	f.admin(t, sql.String())
	return f
}

// admin runs sql (placeholders expanded) as the superuser of the package database.
func (f *fixture) admin(t *testing.T, sql string) {
	t.Helper()
	_, err := exec(t, connect(t, testdb.URL(t)), f.expand(sql))
	require.NoError(t, err)
}

func (f *fixture) expand(s string) string { return f.repl.Replace(s) }

// url is the package database's connection string, logged in as role (a placeholder).
func (f *fixture) url(t *testing.T, role string) string {
	t.Helper()
	u, err := url.Parse(testdb.URL(t))
	require.NoError(t, err)
	u.User = url.UserPassword(f.names[role], password(f.names[role]))
	return u.String()
}

func (f *fixture) drop(t *testing.T) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, testdb.URL(t))
	if err != nil {
		t.Errorf("roleprobe: drop roles: %v", err)
		return
	}
	defer c.Close(ctx)
	// Backends still logged in as a role (a bouncer's) would make DROP ROLE fail.
	_, _ = c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename LIKE $1", f.prefix+`\_%`)
	if err := dropRoles(ctx, c, f.prefix+`\_%`); err != nil {
		t.Errorf("roleprobe: drop roles: %v", err)
	}
}

// dropRoles drops the roles whose names match pattern, with what they own and the
// privileges granted to them in the connection's database, and the tables of the
// same names in public.
func dropRoles(ctx context.Context, c *pgx.Conn, pattern string) error {
	rows, err := c.Query(ctx, "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1 ORDER BY rolname", pattern)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return nil
	}
	var idents []string
	for _, n := range names {
		idents = append(idents, pgx.Identifier{n}.Sanitize())
	}
	list := strings.Join(idents, ", ")
	_, err = c.Exec(ctx, "DROP OWNED BY "+list+" CASCADE; DROP ROLE "+list)
	return err
}

// dropOrphanRoles drops the probe roles that a process on this host made and did not
// drop (a panic or a kill skips the cleanup): roles are cluster-wide and outlive the
// test database.
func dropOrphanRoles(ctx context.Context, c *pgx.Conn) {
	rows, err := c.Query(ctx, `SELECT rolname::text, coalesce(shobj_description(oid, 'pg_authid'), '')
		FROM pg_roles WHERE rolname LIKE 'tenant\_probe\_%'`)
	if err != nil {
		return
	}
	type role struct{ name, comment string }
	roles, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (role, error) {
		var v role
		return v, r.Scan(&v.name, &v.comment)
	})
	if err != nil {
		return
	}
	for _, r := range roles {
		var host string
		var pid int
		if _, err := fmt.Sscanf(r.comment, "tenant roleprobe host=%s pid=%d", &host, &pid); err != nil || host != hostname() {
			continue
		}
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // its maker still runs
		}
		// Privileges in a database other than this one make it fail: left for later.
		_ = dropRoles(ctx, c, r.name)
	}
}

// probe is one string of SQL sent as an attacker would send it: the application's
// statements and the injected ones, stacked, in one simple-protocol message, on a
// fresh connection.
type probe struct {
	name string
	sql  string // placeholders: {role} an identifier, {role:lit} a literal, {role:name} the bare name
	code string // the SQLSTATE the string fails with; "" when every statement succeeds
	last string // when code is "": the last column of the last row returned, as text
	// notice is the SQLSTATE of a notice or warning the server must send ("" for none
	// required): an operation that succeeds while doing nothing says so this way.
	notice string
}

// check runs each probe on a fresh connection to connString (placeholders expanded)
// and asserts its outcome.
func (f *fixture) check(t *testing.T, connString string, probes []probe) {
	t.Helper()
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			var notices []string
			cfg, err := pgx.ParseConfig(connString)
			require.NoError(t, err)
			cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Code) }
			conn, err := pgx.ConnectConfig(context.Background(), cfg)
			require.NoError(t, err)
			defer conn.Close(context.Background())
			last, err := exec(t, conn, f.expand(p.sql))
			if p.code == "" {
				require.NoError(t, err, "SQL: %s", f.expand(p.sql))
				assert.Equal(t, f.expand(p.last), last)
			} else {
				assert.Equal(t, p.code, sqlstate(err), "SQL: %s\nerror: %v", f.expand(p.sql), err)
			}
			if p.notice != "" {
				assert.Contains(t, notices, p.notice)
			}
		})
	}
}

// exec sends sql in one simple-protocol message and returns the last column of the
// last row of the last result that has rows.
func exec(t *testing.T, conn *pgx.Conn, sql string) (string, error) {
	t.Helper()
	results, err := conn.PgConn().Exec(context.Background(), sql).ReadAll()
	last := ""
	for _, r := range results {
		if n := len(r.Rows); n > 0 && len(r.Rows[n-1]) > 0 {
			last = string(r.Rows[n-1][len(r.Rows[n-1])-1])
		}
	}
	return last, err
}

func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), connString)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// sqlstate is err's SQLSTATE, or err's text when it has none (so a failed assertion
// shows it).
func sqlstate(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
