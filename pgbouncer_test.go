package tenant_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/bouncer"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/tenantctx"
)

// behindBouncer starts PgBouncer in transaction mode with poolSize server connections
// and returns a DSN for the package database through it. Without pgbouncer installed
// the test is skipped locally and fails in CI, which installs it.
func behindBouncer(t *testing.T, poolSize int) string {
	t.Helper()
	b := bouncer.ForTest(t, testdb.URL(t), bouncer.Options{Mode: "transaction", PoolSize: poolSize})
	cfg, err := pgx.ParseConfig(testdb.URL(t))
	require.NoError(t, err)
	return b.URL(cfg.User, cfg.Database)
}

// The control: through this PgBouncer a session-level SET on one client connection
// shows up on another, so the tests below could see a leak if there were one.
func TestPgBouncerLeaksSessionSET(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(behindBouncer(t, 1))
	require.NoError(t, err)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.MaxConns = 2
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer p.Close()
	c1, err := p.Acquire(ctx)
	require.NoError(t, err)
	defer c1.Release()
	c2, err := p.Acquire(ctx)
	require.NoError(t, err)
	defer c2.Release()

	_, err = c1.Exec(ctx, "SET search_path TO leaked_schema")
	require.NoError(t, err)
	var sp string
	require.NoError(t, c2.QueryRow(ctx, "SHOW search_path").Scan(&sp))
	assert.Equal(t, "leaked_schema", sp, "another client got the server connection with the SET")
	_, err = c2.Exec(ctx, "RESET search_path")
	require.NoError(t, err)
}

// The lifecycle behind PgBouncer in transaction mode (1.18: no prepared statements, so
// pgx sends statements with QueryExecModeExec): many client connections share three
// server connections; provisioning works, every request sees only its own tenant,
// nothing leaks, and SERIALIZABLE retries keep the counter exact.
func TestLifecycleBehindPgBouncer(t *testing.T) {
	ctx := context.Background()
	dsn := behindBouncer(t, 3)
	a, b := newTenantName("pgba"), newTenantName("pgbb")
	e := newEnvOn(t, dsn, 8, []pool.Option{pool.WithQueryExecMode(pgx.QueryExecModeExec)},
		tenant.Config{Resolver: byHeader}, a, b) // provisioned through the bouncer
	e.seedItems(t, 3, a, b)
	alternate(t, tenant.Middleware(e.mgr)(showTenant), a, b, 8, 50, 3)

	var outside string
	require.NoError(t, e.pool.QueryRow(ctx, "SHOW search_path").Scan(&outside))
	assert.Equal(t, `"$user", public`, outside, "no tenant setting survived in a server connection")

	ok, _ := hammer(t, tenant.Middleware(e.mgr)(incrementCounter), a, 6, 15)
	assert.Equal(t, ok, e.count(t, `SELECT value FROM "`+a+`".counter`))
	assert.Positive(t, ok)
}

// Behind PgBouncer without prepared statement support, a pool left in pgx's default
// statement-cache mode is a configuration error: a request whose statement (its own,
// or admission's) meets another client's prepared statement answers 500 with the fix
// in the log, never a misleading 503 "unavailable". Provisioning prepares nothing and
// works.
func TestPgBouncerWithoutPreparedStatements(t *testing.T) {
	ctx := context.Background()
	dsn := behindBouncer(t, 1) // one server connection: the two clients below share it
	a, b := newTenantName("pgpa"), newTenantName("pgpb")
	e := newEnvOn(t, dsn, 2, nil, tenant.Config{Resolver: byHeader, Attempts: 2}, a, b) // a lost statement runs again once
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		err := tenantctx.Session(r.Context()).QueryRow(r.Context(), "SELECT count(*) FROM items WHERE name = $1", "x").Scan(&n)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = fmt.Fprint(w, n)
	}))
	rec := do(h, "GET", "/", nil, "X-Tenant", a) // prepares the statement on the server connection
	require.Equal(t, 200, rec.Code, rec.Body.String())

	held, err := e.pool.Acquire(ctx) // the first client connection, so the next request makes another
	require.NoError(t, err)
	defer held.Release()
	rec = do(h, "GET", "/", nil, "X-Tenant", a)
	assert.Equal(t, 500, rec.Code)
	assert.NotContains(t, rec.Body.String(), "stmtcache", "the detail goes to the log")
	assert.Contains(t, e.logs.String(), "pool.WithQueryExecMode(pgx.QueryExecModeExec)")

	// Admitting b looks it up on the second client connection, with the statement the
	// first one prepared for a still on the server connection.
	rec = do(tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})), "GET", "/", nil, "X-Tenant", b)
	assert.Equal(t, 500, rec.Code, "not 503: waiting does not help")
	assert.Equal(t, 2, strings.Count(e.logs.String(), "pool.WithQueryExecMode(pgx.QueryExecModeExec)"), e.logs.String())
}

// The reset after each request keeps a client's own start-up parameters behind
// PgBouncer (which copies the server's values into its record of the client), and
// still undoes a handler's SET.
func TestPgBouncerKeepsStartupParameters(t *testing.T) {
	dsn := behindBouncer(t, 1)
	a := newTenantName("pgtz")
	e := newEnvOn(t, dsn, 2, []pool.Option{pool.WithQueryExecMode(pgx.QueryExecModeExec), pool.WithConfig(func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["timezone"] = "Asia/Tokyo"
	})}, tenant.Config{Resolver: byHeader}, a)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		var tz string
		if err := db.QueryRow(r.Context(), "SELECT current_setting('TimeZone')").Scan(&tz); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if _, err := db.Exec(r.Context(), "SET TIME ZONE 'Europe/Paris'"); err != nil { // session-level
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = fmt.Fprint(w, tz)
	}))
	for range 4 {
		rec := do(h, "GET", "/", nil, "X-Tenant", a)
		assert.Equal(t, "Asia/Tokyo", rec.Body.String())
	}
	var tz string
	require.NoError(t, e.pool.QueryRow(context.Background(), "SELECT current_setting('TimeZone')").Scan(&tz))
	assert.Equal(t, "Asia/Tokyo", tz)
}

// Behind PgBouncer in transaction mode, one server connection serves many clients: what
// a request of one client leaves on it never reaches a request of another (two
// Managers here, one server connection between them).
func TestPgBouncerSessionStateNeverCrossesClients(t *testing.T) {
	dsn := behindBouncer(t, 1)
	a, b := newTenantName("pgsa"), newTenantName("pgsb")
	opts := []pool.Option{pool.WithQueryExecMode(pgx.QueryExecModeExec)}
	first := newEnvOn(t, dsn, 1, opts, tenant.Config{Resolver: byHeader}, a, b)
	second := newEnvOn(t, dsn, 1, opts, tenant.Config{Resolver: byHeader})
	first.seedItems(t, 2, a, b)
	role, tz := leakFixture(t, first, a)
	ha, hb := tenant.Middleware(first.mgr)(runSQL), tenant.Middleware(second.mgr)(runSQL)
	for _, tc := range leakCases(b, role, tz) {
		t.Run(tc.name, func(t *testing.T) { checkLeak(t, ha, hb, a, b, tc) })
	}
}

// slowResetConn delays a message that is a reset on its own (what the end sends after
// a failed COMMIT), so that another client can take the server connection meanwhile.
type slowResetConn struct {
	net.Conn
	seen func()
}

func (c *slowResetConn) Write(p []byte) (int, error) {
	if len(p) > 5 && p[0] == 'Q' && (bytes.HasPrefix(p[5:], []byte("CLOSE ALL")) || bytes.HasPrefix(p[5:], []byte("DISCARD SEQUENCES"))) {
		c.seen()
		time.Sleep(500 * time.Millisecond)
	}
	return c.Conn.Write(p)
}

// Behind PgBouncer, when COMMIT fails the rest of the round trip is skipped and the
// server connection goes to the next client at once: a reset sent after may land on
// another. What does not roll back with the transaction (SQL-prepared statements,
// sequence state) is therefore removed before COMMIT, in the same round trip, and the
// next client finds nothing. (Session advisory locks are released after COMMIT; see
// reset.go.)
func TestPgBouncerFailedCommitLeavesNothing(t *testing.T) {
	dsn := behindBouncer(t, 2)
	a, b := newTenantName("pgfa"), newTenantName("pgfb")
	resetSeen := make(chan struct{})
	var once sync.Once
	e := newEnvOn(t, dsn, 2, []pool.Option{pool.WithQueryExecMode(pgx.QueryExecModeExec),
		pool.WithConfig(func(c *pgxpool.Config) {
			c.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &slowResetConn{Conn: nc, seen: func() { once.Do(func() { close(resetSeen) }) }}, nil
			}
		})}, tenant.Config{Resolver: byHeader}, a, b)
	e.seedItems(t, 2, a, b)
	h := tenant.Middleware(e.mgr)(runSQL)

	done := make(chan int)
	go func() { // pending's unique constraint is deferred: the duplicate fails at COMMIT
		code, _ := sqlRequest(h, a, "PREPARE leak_stmt AS SELECT owner FROM items; "+
			"SELECT nextval(pg_get_serial_sequence('items', 'id')); INSERT INTO pending VALUES (1), (1); SELECT 'ok'")
		done <- code
	}()
	<-resetSeen
	code, body := sqlRequest(h, b, "SELECT CASE WHEN EXISTS (SELECT FROM pg_prepared_statements WHERE from_sql) "+
		"THEN 'prepared statement left' ELSE 'clean' END")
	assert.Equal(t, "200 clean", fmt.Sprint(code, " ", body))
	code, body = sqlRequest(h, b, "SELECT lastval()::text")
	assert.Equal(t, "422 error 55000", fmt.Sprint(code, " ", body))
	assert.Equal(t, 500, <-done, "A's COMMIT failed")
}

// Behind PgBouncer a client connection is not a backend: retiring one after it served
// MaxTenantsPerConn tenants reconnects to PgBouncer, and the server connections (the
// backends whose memory the bound is about) stay as they were. Harmless: every
// request succeeds with exact values, and no backend is added.
func TestMaxTenantsPerConnBehindPgBouncer(t *testing.T) {
	const servers = 2
	dsn := behindBouncer(t, servers)
	e := newEnvOn(t, dsn, 4, []pool.Option{pool.WithQueryExecMode(pgx.QueryExecModeExec)},
		tenant.Config{MaxTenantsPerConn: 2})
	names := provisionTenants(t, e, "pgbm", 8)

	got := serveAll(t, e.mgr, names, 3, 4)
	assert.LessOrEqual(t, len(got.tenants), servers, "backends are PgBouncer's: retiring a client connection adds none")
	assert.Greater(t, e.pool.Stat().NewConnsCount(), int64(4), "client connections retired and were replaced")
}
