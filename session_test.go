package tenant_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

func TestLazySession(t *testing.T) {
	a := newTenantName("lz")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	idle := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = tenantctx.Session(r.Context()) // taken, never used
		w.WriteHeader(204)
	}))
	do(idle, "GET", "/", nil, "X-Tenant", a) // admission is cached after this
	acquires := e.pool.Stat().AcquireCount()
	trips := e.roundTrips(func() {
		for range 5 {
			assert.Equal(t, 204, do(idle, "GET", "/", nil, "X-Tenant", a).Code)
		}
	})
	assert.Equal(t, acquires, e.pool.Stat().AcquireCount(), "no connection for a request that never queries")
	assert.Zero(t, trips, "and no round trip")

	var searchPath, isolation string
	used := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		if !assert.NoError(t, db.QueryRow(r.Context(), "SELECT current_setting('search_path') || '|' || current_setting('transaction_isolation')").Scan(&searchPath)) {
			return
		}
		isolation = searchPath[strings.Index(searchPath, "|")+1:]
		searchPath = searchPath[:strings.Index(searchPath, "|")]
	}))
	do(used, "GET", "/", nil, "X-Tenant", a) // the statement is prepared after this
	// Begin (BEGIN, version lock, SET LOCALs) with the query, the end (check, COMMIT, reset).
	assert.Equal(t, int64(2), e.roundTrips(func() { do(used, "GET", "/", nil, "X-Tenant", a) }))
	assert.Equal(t, a+", extensions, pg_temp", searchPath, "public is not on the path; pg_temp is last")
	assert.Equal(t, "serializable", isolation)
}

func TestBeginIsOneRoundTripWithSetLocal(t *testing.T) {
	a := newTenantName("bq")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader, Isolation: pgx.RepeatableRead}, a)
	marker := markerOf(t, e, a) // before: the request holds the pool's one connection
	var settings string
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		trips := e.roundTrips(func() {
			_, err := db.Exec(r.Context(), "SELECT 1")
			assert.NoError(t, err)
		})
		assert.Equal(t, int64(1), trips, "the begin and the statement went in one round trip")
		assert.NoError(t, db.QueryRow(r.Context(), `SELECT current_setting('transaction_isolation') || '|' ||
			current_setting('search_path') || '|' || current_setting('tenant.schema') || '|' ||
			(SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND relation = $1::regclass AND mode = 'AccessShareLock')`,
			marker).Scan(&settings))
	}))
	require.Equal(t, 200, do(h, "GET", "/", nil, "X-Tenant", a).Code)
	assert.Equal(t, "repeatable read|"+a+", extensions, pg_temp|"+a+"|1", settings)
}

// Every way a request can end leaves the connection clean: with a pool of one
// connection, the next request (another tenant) sees its own search_path, and the
// pool never holds a connection inside a transaction.
func TestConnectionHygiene(t *testing.T) {
	a, b := newTenantName("hya"), newTenantName("hyb")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a, b)
	app := e.pool.Config().ConnConfig.RuntimeParams["application_name"]

	ending := map[string]http.HandlerFunc{
		"commit":   func(w http.ResponseWriter, r *http.Request) {},
		"rollback": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) },
		"panic":    func(w http.ResponseWriter, r *http.Request) { panic("boom") },
		"cancel": func(w http.ResponseWriter, r *http.Request) {
			r.Context().Value(cancelKey{}).(context.CancelFunc)()
		},
		"flush": func(w http.ResponseWriter, r *http.Request) { w.(http.Flusher).Flush() },
	}
	show := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sp string
		if !assert.NoError(t, tenantctx.Session(r.Context()).QueryRow(r.Context(), "SHOW search_path").Scan(&sp)) {
			return
		}
		_, _ = fmt.Fprint(w, sp)
	}))
	for name, end := range ending {
		t.Run(name, func(t *testing.T) {
			h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "INSERT INTO items (name) VALUES ('x')")
				if !assert.NoError(t, err) {
					return
				}
				end(w, r)
			}))
			ctx, cancel := context.WithCancel(context.WithValue(context.Background(), cancelKey{}, nil))
			ctx = context.WithValue(ctx, cancelKey{}, cancel)
			func() {
				defer func() { _ = recover() }()
				req := newRequest(ctx, a)
				h.ServeHTTP(newRecorder(), req)
			}()
			assert.Zero(t, e.pool.Stat().AcquiredConns())
			assert.Zero(t, e.count(t, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'`, app),
				"no connection of the pool is in a transaction")
			rec := do(show, "GET", "/", nil, "X-Tenant", b)
			assert.Equal(t, b+", extensions, pg_temp", rec.Body.String())
			var outside string
			require.NoError(t, e.pool.QueryRow(context.Background(), "SHOW search_path").Scan(&outside))
			assert.Equal(t, `"$user", public`, outside, "nothing leaked into the session settings")
		})
	}
}

// Two tenants, 8 goroutines x 200 requests over a small pool: every request sees only
// its own tenant's rows.
func TestTenantIsolationUnderLoad(t *testing.T) {
	a, b := newTenantName("isa"), newTenantName("isb")
	e := newEnv(t, 3, tenant.Config{Resolver: byHeader}, a, b)
	e.seedItems(t, 5, a, b)
	trips := e.roundTrips(func() { alternate(t, tenant.Middleware(e.mgr)(showTenant), a, b, 8, 200, 5) })
	assert.GreaterOrEqual(t, trips, int64(8*200*3), "every request began with its first query, queried again and committed")
}
