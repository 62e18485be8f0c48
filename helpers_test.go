package tenant_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	logs    *logBuffer
}

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
	e := &env{admin: testdb.Pool(t), queries: &queryCounter{}, logs: &logBuffer{}}
	opts = append([]pool.Option{pool.WithMaxConns(maxConns),
		pool.WithConfig(func(c *pgxpool.Config) {
			c.ConnConfig.Tracer = e.queries
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
	var n int
	require.NoError(t, e.admin.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// items counts the rows named name in tenant's items table.
func (e *env) items(t *testing.T, tenantName, name string) int {
	return e.count(t, `SELECT count(*) FROM "`+tenantName+`".items WHERE name = $1`, name)
}

// insertItem adds an item named name through the request's session.
func insertItem(t *testing.T, r *http.Request, name string) {
	t.Helper()
	_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "INSERT INTO items (name) VALUES ($1)", name)
	require.NoError(t, err)
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
