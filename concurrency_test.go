package tenant_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// A goroutine that uses the session while its request ends never reaches the
// connection once it went back to the pool: its statement runs in its own request's
// transaction (the end waits for it) or is refused, never in the next request's, of
// another tenant. The tracer pauses the goroutine's statement inside pgx, where a real
// tracer takes time too.
func TestGoroutineNeverReachesTheNextRequest(t *testing.T) {
	a, b := newTenantName("gra"), newTenantName("grb")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a, b)
	started := make(chan struct{})
	var once sync.Once
	e.queries.hook.Store(&recordingTracer{fn: func(sql string) {
		if strings.Contains(sql, "from-a") {
			once.Do(func() { close(started); time.Sleep(200 * time.Millisecond) })
		}
	}})
	var bg sync.WaitGroup
	var bgErr error
	hA := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		_, _ = db.Exec(r.Context(), "SELECT 1")
		bg.Go(func() { // a background write the handler does not wait for
			_, bgErr = db.Exec(context.Background(), "INSERT INTO items (name) VALUES ('from-a')")
		})
		<-started
	}))
	hB := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = tenantctx.Session(r.Context()).Exec(r.Context(), "SELECT 1")
		time.Sleep(300 * time.Millisecond) // B's transaction is open on the connection
	}))
	require.Equal(t, 200, do(hA, "POST", "/", nil, "X-Tenant", a).Code)
	require.Equal(t, 200, do(hB, "POST", "/", nil, "X-Tenant", b).Code)
	bg.Wait()
	assert.Zero(t, e.items(t, b, "from-a"), "A's statement ran in B's transaction")
	if bgErr == nil {
		assert.Equal(t, 1, e.items(t, a, "from-a"), "it ran in A's transaction, which waited for it")
	} else {
		assert.ErrorIs(t, bgErr, tenantctx.ErrSessionEnded)
	}
}

// The session is safe for concurrent use: a handler's goroutines may share it (their
// calls take turns), the end waits for a call in progress, and the connection always
// goes back to the pool (a pool of one would hang on a lost one). A handler that does
// not wait for its goroutines may find the connection still busy with their results at
// the end: that request fails (500, commit failed), and only that one.
func TestConcurrentUseOfTheSession(t *testing.T) {
	a := newTenantName("cus")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	var bg sync.WaitGroup
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		_, _ = db.Exec(r.Context(), "SELECT 1")
		for range 2 {
			bg.Go(func() { // its errors are pgx's "conn busy" while another result is open, or ErrSessionEnded
				_, _ = db.Exec(context.Background(), "INSERT INTO items (name) VALUES ($1)", "bg")
				rows, err := db.Query(context.Background(), "SELECT name FROM items")
				if err == nil {
					for rows.Next() {
					}
					rows.Close()
				}
			})
		}
		_, _ = db.Exec(r.Context(), "SELECT 2")
	}))
	for range 300 {
		rec := do(h, "POST", "/", nil, "X-Tenant", a)
		if rec.Code != 200 {
			assert.Equal(t, "500 commit failed\n", fmt.Sprint(rec.Code, " ", rec.Body.String()))
		}
	}
	bg.Wait()
	poolIdle(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, e.mgr.Run(ctx, a, func(ctx context.Context) error {
		_, err := tenantctx.Session(ctx).Exec(ctx, "SELECT 1")
		return err
	}))
}

// Rows, a row and batch results kept past the end of their request read nothing: their
// connection may serve another tenant by then.
func TestResultsKeptPastTheRequestReadNothing(t *testing.T) {
	a := newTenantName("kept")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	e.seedItems(t, 3, a)
	var kept struct {
		rows tenantctxRows
	}
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rows, err := tenantctx.Session(r.Context()).Query(r.Context(), "SELECT owner FROM items")
		if !assert.NoError(t, err) {
			return
		}
		kept.rows = rows
		w.WriteHeader(422) // roll back; the rows are left open
	}))
	assert.Equal(t, 422, do(h, "GET", "/", nil, "X-Tenant", a).Code)
	assert.False(t, kept.rows.Next())
	assert.Nil(t, kept.rows.RawValues())
	assert.ErrorIs(t, kept.rows.Err(), tenantctx.ErrSessionEnded)
	kept.rows.Close()
	poolIdle(t, e)
}

// poolIdle waits until every connection is back in the pool, or destroyed: pgxpool
// destroys a connection that is not idle in a goroutine of its own.
func poolIdle(t *testing.T, e *env) {
	t.Helper()
	assert.Eventually(t, func() bool { return e.pool.Stat().AcquiredConns() == 0 }, 5*time.Second, 10*time.Millisecond,
		"every connection went back to the pool")
}

type tenantctxRows = interface {
	Next() bool
	RawValues() [][]byte
	Err() error
	Close()
}

// A request that runs a transaction of its own tenant (Manager.Run) while a migration
// of that tenant waits for it does not hang: the migration gives up after its lock
// timeout (schema.ErrLocked), and the request and its nested transaction go on.
func TestNestedRunDuringAMigrationDoesNotHang(t *testing.T) {
	a := newTenantName("nest")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, a)
	p2, err := schema.NewProvisioner(e.admin, schema.Config{LockTimeout: 300 * time.Millisecond, Migrations: fstest.MapFS{
		"001_app.sql": appMigrations["001_app.sql"], "002_more.sql": {Data: []byte("ALTER TABLE items ADD COLUMN note text")}}})
	require.NoError(t, err)
	migrated := make(chan error, 1)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		insertItem(t, r, "order")
		go func() { migrated <- p2.Migrate(context.Background(), a) }() // another process deploys
		assert.Eventually(t, func() bool {
			return e.count(t, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%EXCLUSIVE%'`) == 1
		}, 5*time.Second, 10*time.Millisecond)
		err := e.mgr.Run(r.Context(), a, func(ctx context.Context) error { // an audit row, in a transaction of its own
			_, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO items (name) VALUES ('audit')")
			return err
		})
		if err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
	start := time.Now()
	rec := do(h, "POST", "/", nil, "X-Tenant", a)
	assert.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Less(t, time.Since(start), 4*time.Second)
	assert.ErrorIs(t, <-migrated, schema.ErrLocked)
	assert.Equal(t, 1, e.items(t, a, "audit"))
	assert.Equal(t, 1, e.items(t, a, "order"))
}

// DEALLOCATE ALL in one tenant's request does not break the next request on its
// connection (pgx's cached statements would be gone from the server): the connection
// is closed after it.
func TestDeallocateAllDoesNotBreakTheNextRequest(t *testing.T) {
	a, b := newTenantName("dea"), newTenantName("deb")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a, b)
	e.seedItems(t, 2, a, b)
	show := tenant.Middleware(e.mgr)(showTenant)
	require.Equal(t, 200, do(show, "GET", "/", nil, "X-Tenant", b).Code) // b's statements cached
	code, body := sqlRequest(tenant.Middleware(e.mgr)(runSQL), a, "DEALLOCATE ALL; SELECT 'ok'")
	require.Equal(t, 200, code, body)
	rec := do(show, "GET", "/", nil, "X-Tenant", b)
	assert.Equal(t, 200, rec.Code, rec.Body.String())
}

// Statements a handler sends after its own COMMIT, in the same message, run outside
// the tenant's binding with the connection's default search_path ("$user", public):
// no tenant may be named like the pool's role, so they never reach a tenant.
func TestNoTenantNamedLikeThePoolsRole(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader, Admission: tenant.AutoCreate(nil)})
	role := e.pool.Config().ConnConfig.User
	assert.ErrorIs(t, e.mgr.Provisioner().Ensure(ctx, role), schema.ErrReserved)
	assert.Equal(t, 404, do(tenant.Middleware(e.mgr)(showTenant), "GET", "/", nil, "X-Tenant", role).Code)
}

// An http.TimeoutHandler inside the middleware answers 503 and returns while its
// handler goes on: the lifecycle rolls back and releases the connection, and the
// orphaned handler's later calls fail (ErrSessionEnded) instead of racing it. Run
// under the race detector.
func TestTimeoutHandlerInsideTheMiddleware(t *testing.T) {
	a := newTenantName("tmo")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	orphaned := make(chan error, 1)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		insertItem(t, r, "before-timeout")
		<-r.Context().Done() // the TimeoutHandler gave up on us
		_, err := tenantctx.Session(r.Context()).Exec(context.Background(), "INSERT INTO items (name) VALUES ('after-timeout')")
		orphaned <- err
	})
	h := tenant.Middleware(e.mgr)(http.TimeoutHandler(slow, 100*time.Millisecond, "too slow"))
	rec := do(h, "POST", "/", nil, "X-Tenant", a)
	assert.Equal(t, "503 too slow", fmt.Sprint(rec.Code, " ", rec.Body.String()))
	err := <-orphaned
	if err != nil {
		assert.ErrorIs(t, err, tenantctx.ErrSessionEnded)
	}
	poolIdle(t, e)
	assert.Zero(t, e.items(t, a, "before-timeout"), "rolled back with the 503")
	assert.Zero(t, e.items(t, a, "after-timeout"))
}
