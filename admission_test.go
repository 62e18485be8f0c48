package tenant_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// countItems is whoami: "<tenant> <path>" after counting the tenant's items.
var countItems = http.HandlerFunc(whoami)

// A schema this library did not provision is never served, under either admission
// policy: it answers the same 404 as a missing tenant, and nothing is created in it.
func TestForeignSchemaAnswersUnknownTenant(t *testing.T) {
	ctx := context.Background()
	for _, admission := range []tenant.Admission{tenant.ExistingOnly(), tenant.AutoCreate(nil)} {
		e := newEnv(t, 2, tenant.Config{Resolver: byHeader, Admission: admission})
		foreign := newTenantName("audit")
		_, err := e.admin.Exec(ctx, `CREATE SCHEMA "`+foreign+`"; CREATE TABLE "`+foreign+`".items (id int, name text)`)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = e.admin.Exec(ctx, `DROP SCHEMA "`+foreign+`" CASCADE`) })

		rec := do(tenant.Middleware(e.mgr)(countItems), "GET", "/documents", nil, "X-Tenant", foreign)
		assert.Equal(t, 404, rec.Code)
		assert.Equal(t, "unknown tenant\n", rec.Body.String())
		assert.Zero(t, e.count(t, `SELECT count(*) FROM pg_class WHERE relnamespace = $1::regnamespace AND relname <> 'items'`, foreign),
			"nothing was created in it")
		err = e.mgr.Run(ctx, foreign, func(context.Context) error { return nil })
		assert.ErrorIs(t, err, tenant.ErrUnknownTenant)
	}
}

// Schemas made by an earlier release answer 404 until adopted, then work as before.
func TestLegacyTenantAfterAdopt(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader, MissTTL: 100 * time.Millisecond})
	legacy := newTenantName("legacy")
	_, err := e.admin.Exec(ctx, `CREATE SCHEMA "`+legacy+`";
		CREATE TABLE "`+legacy+`".tenant_migrations (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE "`+legacy+`".items (id serial PRIMARY KEY, owner text NOT NULL DEFAULT current_schema(), name text NOT NULL);
		INSERT INTO "`+legacy+`".tenant_migrations (version, name) VALUES (1, '001_app.sql');
		INSERT INTO "`+legacy+`".items (name) VALUES ('kept')`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = e.admin.Exec(ctx, `DROP SCHEMA "`+legacy+`" CASCADE`) })
	h := tenant.Middleware(e.mgr)(countItems)

	assert.Equal(t, 404, do(h, "GET", "/", nil, "X-Tenant", legacy).Code)
	require.NoError(t, e.mgr.Provisioner().Adopt(ctx, legacy))
	var rec *httptest.ResponseRecorder
	require.Eventually(t, func() bool { // once the remembered 404 expires (MissTTL)
		rec = do(h, "GET", "/", nil, "X-Tenant", legacy)
		return rec.Code == 200
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, legacy+" /", rec.Body.String())
}

// A tenant dropped behind the Manager's back (another process, a DROP SCHEMA by hand)
// is seen by the next request although admission remembered it: 404 under
// ExistingOnly, and under AutoCreate it is provisioned again, empty.
func TestDroppedTenantIsSeenAtOnce(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		admission tenant.Admission
		code      int
		body      string
	}{
		{tenant.ExistingOnly(), 404, "unknown tenant\n"},
		{tenant.AutoCreate(nil), 200, "0"},
	} {
		e := newEnv(t, 1, tenant.Config{Resolver: byHeader, Admission: tc.admission})
		a := newTenantName("drop")
		require.NoError(t, e.mgr.Provisioner().Ensure(ctx, a))
		t.Cleanup(func() { _, _ = e.admin.Exec(ctx, `DROP SCHEMA IF EXISTS "`+a+`" CASCADE`) })
		e.seedItems(t, 3, a)
		h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var n int
			if err := tenantctx.Session(r.Context()).QueryRow(r.Context(), "SELECT count(*) FROM items").Scan(&n); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			_, _ = w.Write([]byte(strconv.Itoa(n)))
		}))
		rec := do(h, "GET", "/", nil, "X-Tenant", a)
		require.Equal(t, "3", rec.Body.String())

		_, err := e.admin.Exec(ctx, `DROP SCHEMA "`+a+`" CASCADE`)
		require.NoError(t, err)
		rec = do(h, "GET", "/", nil, "X-Tenant", a)
		assert.Equal(t, tc.code, rec.Code)
		assert.Equal(t, tc.body, rec.Body.String())
		rec = do(h, "GET", "/", nil, "X-Tenant", a)
		assert.Equal(t, tc.code, rec.Code, "and the next one")
	}
}

// A registered tenant whose schema was dropped and made again by someone else is not
// a tenant: the registration names the schema the library made.
func TestRecreatedForeignSchemaIsNotTheTenant(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader, Admission: tenant.AutoCreate(nil)})
	a := newTenantName("squat")
	require.NoError(t, e.mgr.Provisioner().Ensure(ctx, a))
	t.Cleanup(func() { _, _ = e.admin.Exec(ctx, `DROP SCHEMA IF EXISTS "`+a+`" CASCADE`) })
	h := tenant.Middleware(e.mgr)(countItems)
	require.Equal(t, 200, do(h, "GET", "/", nil, "X-Tenant", a).Code)

	_, err := e.admin.Exec(ctx, `DROP SCHEMA "`+a+`" CASCADE; CREATE SCHEMA "`+a+`"; CREATE TABLE "`+a+`".items (id int)`)
	require.NoError(t, err)
	assert.Equal(t, 404, do(h, "GET", "/", nil, "X-Tenant", a).Code)
	_, err = e.mgr.Provisioner().Lookup(ctx, a)
	assert.ErrorIs(t, err, schema.ErrNotFound)
}

// A request waiting for another request's check of the same tenant waits only as
// long as its own context allows: the check is stuck here (its registry query waits on
// a lock), and the impatient request still returns, 503, while it is.
func TestAdmissionWaitHonoursItsContext(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader})
	a := newTenantName("slowadm")
	require.NoError(t, e.mgr.Provisioner().Ensure(ctx, a))
	t.Cleanup(func() { _, _ = e.admin.Exec(ctx, `DROP SCHEMA IF EXISTS "`+a+`" CASCADE`) })
	lock, err := e.admin.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback(ctx) }()
	_, err = lock.Exec(ctx, "LOCK TABLE tenant_registry.tenants IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)

	h := tenant.Middleware(e.mgr)(countItems)
	first := make(chan int, 1)
	go func() { first <- do(h, "GET", "/", nil, "X-Tenant", a).Code }() // starts the check, which waits
	require.Eventually(t, func() bool {
		return e.count(t, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%tenant_registry%'`) == 1
	}, 10*time.Second, 10*time.Millisecond)

	impatient := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		rec := newRecorder()
		h.ServeHTTP(rec, newRequest(ctx, a))
		impatient <- rec.Code
	}()
	select {
	case code := <-impatient:
		assert.Equal(t, 503, code)
	case <-time.After(10 * time.Second):
		t.Fatal("the request waited for the check past its own deadline")
	}
	require.NoError(t, lock.Rollback(ctx))
	assert.Equal(t, 200, <-first, "the check itself went on and served the first request")
}
