package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

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
	b, err := bouncer.Start(context.Background(), testdb.URL(t), "transaction", poolSize)
	if errors.Is(err, bouncer.ErrNotInstalled) {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must run the PgBouncer tests: apt-get install pgbouncer")
		}
		t.Skip("pgbouncer is not installed (apt-get install pgbouncer); the PgBouncer tests run where it is")
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Stop() })
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
	for _, n := range []string{a, b} {
		_, err := e.admin.Exec(ctx, `INSERT INTO "`+n+`".items (owner, name) SELECT $1, 'row' || g FROM generate_series(1, 3) g`, n)
		require.NoError(t, err)
	}
	show := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		var sp string
		if err := db.QueryRow(r.Context(), "SHOW search_path").Scan(&sp); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		rows, err := db.Query(r.Context(), "SELECT owner FROM items WHERE id <= $1", 3)
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
	}))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				name := a
				if (g+i)%2 == 1 {
					name = b
				}
				rec := do(show, "GET", "/", nil, "X-Tenant", name)
				want := name + ", extensions|" + name + "," + name + "," + name
				if !assert.Equal(t, 200, rec.Code, rec.Body.String()) || !assert.Equal(t, want, rec.Body.String()) {
					return
				}
			}
		})
	}
	wg.Wait()

	var outside string
	require.NoError(t, e.pool.QueryRow(ctx, "SHOW search_path").Scan(&outside))
	assert.Equal(t, `"$user", public`, outside, "no tenant setting survived in a server connection")

	incr := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		var v int
		if err := db.QueryRow(r.Context(), "SELECT value FROM counter WHERE id = 1").Scan(&v); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if _, err := db.Exec(r.Context(), "UPDATE counter SET value = $1 WHERE id = 1", v+1); err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
	var ok atomic.Int32
	for range 6 {
		wg.Go(func() {
			for range 15 {
				switch rec := do(incr, "POST", "/", nil, "X-Tenant", a); rec.Code {
				case 200:
					ok.Add(1)
				case 409:
				default:
					t.Errorf("unexpected %d: %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int(ok.Load()), e.count(t, `SELECT value FROM "`+a+`".counter`))
	assert.Positive(t, ok.Load())
}
