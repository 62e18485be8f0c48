package tenant_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/tenantctx"
)

// appMigrations: items carry the schema they were inserted in, so a test can tell
// whose rows a request saw; counter is the read-modify-write target; pending has a
// deferred unique constraint, so a duplicate fails at COMMIT, not at INSERT.
var appMigrations = fstest.MapFS{
	"001_app.sql": {Data: []byte(`
CREATE TABLE items (id serial PRIMARY KEY, owner text NOT NULL DEFAULT current_schema(), name text NOT NULL);
CREATE TABLE counter (id int PRIMARY KEY, value int NOT NULL);
INSERT INTO counter VALUES (1, 0);
CREATE TABLE pending (k int, CONSTRAINT pending_k UNIQUE (k) DEFERRABLE INITIALLY DEFERRED);`)},
}

// queryCounter counts statements sent through a pool, and shows them to a hook.
type queryCounter struct {
	n    atomic.Int64
	hook atomic.Pointer[recordingTracer]
}

type recordingTracer struct{ fn func(sql string) }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	if h := q.hook.Load(); h != nil {
		h.fn(d.SQL)
	}
	return ctx
}
func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

type env struct {
	mgr     *tenant.Manager
	pool    *pgxpool.Pool // the Manager's pool
	admin   *pgxpool.Pool // a separate pool for checking from outside
	queries *queryCounter
	wire    *wire // round trips on the Manager's connections
	logs    *logBuffer
	tenants []string // the tenants newEnv provisioned
}

// wire counts round trips on the connections it dialed: one starts each time the
// client writes after it has read (or writes first). Pipelined writes count once.
type wire struct{ trips atomic.Int64 }

func (w *wire) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, w: w, read: true}, nil
}

type countingConn struct {
	net.Conn
	w    *wire
	mu   sync.Mutex
	read bool // the last operation was a read: the next write starts a round trip
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.read {
		c.w.trips.Add(1)
		c.read = false
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read = true
	c.mu.Unlock()
	return n, err
}

// roundTrips runs fn and returns how many round trips the Manager's connections made.
func (e *env) roundTrips(fn func()) int64 {
	before := e.wire.trips.Load()
	fn()
	return e.wire.trips.Load() - before
}

// shared is the pool every env checks from outside with, one for the package: a
// backend costs a fork and the server's start-up work, and a check needs no fresh
// one (the Manager's pool, which the tests are about, is each test's own). A test
// ends what it begins on it: a transaction, a lock.
var shared struct {
	once  sync.Once
	admin *pgxpool.Pool
	err   error
}

func adminPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	shared.once.Do(func() { shared.admin, shared.err = pgxpool.New(context.Background(), testdb.URL(t)) })
	require.NoError(t, shared.err)
	return shared.admin
}

// raise is SQL that fails with the given SQLSTATE, as the server would. It calls a
// function of the package database rather than running a DO block: the library
// closes a backend that ran one (its code may have left what the reset cannot
// remove), and the backend of a failure is to serve on, as after a real one.
func raise(code, msg string) string {
	raiseOnce.Do(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, testdb.DatabaseURL())
		if err == nil {
			_, err = c.Exec(ctx, `CREATE OR REPLACE FUNCTION public.tenant_test_raise(code text, msg text) RETURNS void
				LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING ERRCODE = code, MESSAGE = msg; END $$`)
			_ = c.Close(ctx)
		}
		if err != nil {
			panic(fmt.Sprintf("raise: %v", err))
		}
	})
	return "SELECT public.tenant_test_raise(" + tenant.QuoteLiteral(code) + ", " + tenant.QuoteLiteral(msg) + ")"
}

var raiseOnce sync.Once

// newEnv makes a Manager on the package database with its own pool (maxConns
// connections, every statement counted) and provisions the given tenants.
func newEnv(t *testing.T, maxConns int32, cfg tenant.Config, tenants ...string) *env {
	t.Helper()
	return newEnvOn(t, testdb.URL(t), maxConns, nil, cfg, tenants...)
}

// newEnvOn is newEnv with the Manager's pool on dsn (e.g. through PgBouncer) and
// extra pool options.
func newEnvOn(t *testing.T, dsn string, maxConns int32, opts []pool.Option, cfg tenant.Config, tenants ...string) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{admin: adminPool(t), queries: &queryCounter{}, wire: &wire{}, logs: &logBuffer{}, tenants: tenants}
	opts = append([]pool.Option{pool.WithMaxConns(maxConns),
		pool.WithConfig(func(c *pgxpool.Config) {
			c.ConnConfig.Tracer = e.queries
			c.ConnConfig.DialFunc = e.wire.dial
			c.ConnConfig.RuntimeParams["application_name"] = "tenant_test_" + t.Name()[:min(len(t.Name()), 40)]
		})}, opts...)
	p, err := pool.New(ctx, dsn, opts...)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	e.pool = p
	cfg.Pool = p
	if cfg.Migrations == nil {
		cfg.Migrations = appMigrations
	}
	if cfg.Logger == nil {
		cfg.Logger = slogTo(e.logs)
	}
	e.mgr, err = tenant.New(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(e.mgr.Close)
	for _, name := range tenants {
		require.NoError(t, e.mgr.Provisioner().Ensure(ctx, name))
		t.Cleanup(func() { _, _ = e.admin.Exec(ctx, `DROP SCHEMA IF EXISTS "`+name+`" CASCADE`) })
	}
	return e
}

// newTenantName returns a fresh valid tenant name.
func newTenantName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// count runs a counting query from outside the Manager.
func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	return countRow(t, e.admin, sql, args...)
}

// countRow runs a counting query on db; -1 when it fails. It asserts rather than
// requires: handlers call it on a server's goroutine, where FailNow would hang the
// request instead of failing the test.
func countRow(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if !assert.NoError(t, db.QueryRow(context.Background(), sql, args...).Scan(&n)) {
		return -1
	}
	return n
}

// items counts the rows named name in tenant's items table.
func (e *env) items(t *testing.T, tenantName, name string) int {
	return e.count(t, `SELECT count(*) FROM "`+tenantName+`".items WHERE name = $1`, name)
}

// insertItem adds an item named name through the request's session (asserting, as
// countRow does, since handlers call it).
func insertItem(t *testing.T, r *http.Request, name string) {
	t.Helper()
	_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "INSERT INTO items (name) VALUES ($1)", name)
	assert.NoError(t, err)
}

// incrementCounter reads the tenant's counter and writes it back plus one: a
// read-modify-write, so concurrent requests conflict under SERIALIZABLE.
var incrementCounter = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	db := tenantctx.Session(r.Context())
	var v int
	if err := db.QueryRow(r.Context(), "SELECT value FROM counter WHERE id = 1").Scan(&v); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	if _, err := db.Exec(r.Context(), "UPDATE counter SET value = $1 WHERE id = 1", v+1); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	_, _ = fmt.Fprintf(w, `{"value":%d}`, v+1)
})

// showTenant answers "<search_path>|<owner of each item>", what a request really sees.
var showTenant = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	db := tenantctx.Session(r.Context())
	var sp string
	if err := db.QueryRow(r.Context(), "SHOW search_path").Scan(&sp); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	rows, err := db.Query(r.Context(), "SELECT owner FROM items ORDER BY id")
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	_, _ = fmt.Fprint(w, sp+"|"+strings.Join(owners, ","))
})

// seedItems gives each tenant n items owned by it, written from outside the Manager.
func (e *env) seedItems(t *testing.T, n int, tenants ...string) {
	t.Helper()
	for _, name := range tenants {
		_, err := e.admin.Exec(context.Background(), `INSERT INTO "`+name+`".items (owner, name) SELECT $1, 'row' || g FROM generate_series(1, $2) g`, name, n)
		require.NoError(t, err)
	}
}

// alternate sends showTenant requests for tenants a and b from several goroutines and
// checks that each sees only its own schema and its own n items.
func alternate(t *testing.T, h http.Handler, a, b string, goroutines, each, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				name := a
				if (g+i)%2 == 1 {
					name = b
				}
				rec := do(h, "GET", "/", nil, "X-Tenant", name)
				want := name + ", extensions, pg_temp|" + strings.TrimSuffix(strings.Repeat(name+",", n), ",")
				if !assert.Equal(t, 200, rec.Code, rec.Body.String()) || !assert.Equal(t, want, rec.Body.String()) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// hammer sends workers x each incrementCounter requests for tenant and returns how
// many were answered 200 and 409; any other answer fails the test.
func hammer(t *testing.T, h http.Handler, tenantName string, workers, each int) (ok, conflict int) {
	t.Helper()
	var okN, conflictN atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				switch rec := do(h, "POST", "/counter", nil, "X-Tenant", tenantName); rec.Code {
				case 200:
					okN.Add(1)
				case 409:
					conflictN.Add(1)
				default:
					t.Errorf("unexpected %d: %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
	wg.Wait()
	return int(okN.Load()), int(conflictN.Load())
}

// do sends a request through handler and returns the recorder.
func do(h http.Handler, method, target string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func newRequest(ctx context.Context, tenantName string) *http.Request {
	req := httptest.NewRequest("POST", "/", nil).WithContext(ctx)
	req.Header.Set("X-Tenant", tenantName)
	return req
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// byHeader is the resolver most tests use: the tenant in X-Tenant.
var byHeader = middleware.Header("X-Tenant")

// logBuffer collects log lines from concurrent requests.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
