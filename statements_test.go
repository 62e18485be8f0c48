package tenant_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// Two schema versions of one table. v1 is what an older release (or another tenant's
// plan) has; v2 changes every column's type, as a real migration might.
var (
	eventsV1 = fstest.MapFS{"001_events.sql": {Data: []byte(`
CREATE TABLE events (id serial PRIMARY KEY, owner text NOT NULL, at timestamp, amount float8, code int)`)}}
	eventsV2 = fstest.MapFS{
		"001_events.sql": eventsV1["001_events.sql"],
		"002_types.sql": {Data: []byte(`ALTER TABLE events ALTER at TYPE timestamptz USING at AT TIME ZONE 'UTC',
			ALTER amount TYPE numeric(20,2), ALTER code TYPE text`)},
	}
)

// eventAt is 12:00 in UTC+2: 10:00 UTC. A timestamptz column stores that instant; a
// timestamp column stores the wall clock 12:00 (pgx sends it without the zone).
var eventAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("UTC+2", 2*3600))

// eventAmount has more digits than a float8 keeps: numeric(20,2) stores it exactly.
const eventAmount = "12345678901234567.89"

// provisionAt creates tenants with the given migrations, outside the Manager.
func provisionAt(t *testing.T, e *env, migrations fs.FS, names ...string) {
	t.Helper()
	p, err := schema.NewProvisioner(e.admin, schema.Config{Migrations: migrations, Logger: slogTo(e.logs)})
	require.NoError(t, err)
	for _, name := range names {
		require.NoError(t, p.Ensure(context.Background(), name))
		t.Cleanup(func() { _, _ = e.admin.Exec(context.Background(), `DROP SCHEMA IF EXISTS "`+name+`" CASCADE`) })
	}
}

// insertEvent inserts one event with the same Go values for every tenant, the way an
// application's handler would; with ?count=1 it answers the rows with that ?code=.
var insertEvent = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	db := tenantctx.Session(r.Context())
	code := r.URL.Query().Get("code")
	if _, err := db.Exec(r.Context(), "INSERT INTO events (owner, at, amount, code) VALUES ($1, $2, $3, $4)",
		tenantctx.Schema(r.Context()), eventAt, eventAmount, code); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	if r.URL.Query().Get("count") == "" {
		w.WriteHeader(201)
		return
	}
	var n int
	if err := db.QueryRow(r.Context(), "SELECT count(*) FROM events WHERE code = $1", code).Scan(&n); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.WriteHeader(201)
	_, _ = fmt.Fprint(w, n)
})

// markerOf is the tenant's version marker, quoted.
func markerOf(t *testing.T, e *env, tenantName string) string {
	t.Helper()
	tenant, err := e.mgr.Provisioner().Lookup(context.Background(), tenantName)
	require.NoError(t, err)
	return schema.VersionMarker(tenant).Sanitize()
}

// storedEvent returns what the tenant's last event holds, read from outside.
func storedEvent(t *testing.T, e *env, tenantName string) (epoch int64, amount, code string) {
	t.Helper()
	require.NoError(t, e.admin.QueryRow(context.Background(), `SELECT extract(epoch FROM at)::bigint, amount::text, code::text
		FROM "`+tenantName+`".events ORDER BY id DESC LIMIT 1`).Scan(&epoch, &amount, &code))
	return epoch, amount, code
}

// A statement prepared for one tenant is never used for another: with one connection,
// tenant B's INSERT runs right after tenant A's on the same backend, and stores B's
// values as B's column types say (the instant, all digits), not as A's (hours off,
// rounded); B's text comparison does not fail against A's integer plan.
func TestStatementsNeverCrossTenants(t *testing.T) {
	a, b := newTenantName("stma"), newTenantName("stmb")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader})
	provisionAt(t, e, eventsV1, a)
	provisionAt(t, e, eventsV2, b)
	h := tenant.Middleware(e.mgr)(insertEvent)

	for i, query := range []string{"", "&count=1"} { // plain inserts, then with a comparison on code
		rec := do(h, "POST", "/?code=7"+query, nil, "X-Tenant", a)
		require.Equal(t, 201, rec.Code, "round %d: %s", i, rec.Body)
		epoch, amount, code := storedEvent(t, e, a)
		assert.Equal(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Unix(), epoch, "v1 stores the wall clock")
		assert.Equal(t, "1.2345678901234568e+16", amount)
		assert.Equal(t, "7", code)

		rec = do(h, "POST", "/?code=7"+query, nil, "X-Tenant", b)
		require.Equal(t, 201, rec.Code, "round %d: %s", i, rec.Body)
		if query != "" {
			assert.Equal(t, "2", rec.Body.String())
		}
		epoch, amount, code = storedEvent(t, e, b)
		assert.Equal(t, eventAt.Unix(), epoch, "v2 stores the instant, not the wall clock")
		assert.Equal(t, eventAmount, amount, "v2 stores every digit")
		assert.Equal(t, "7", code)
	}
}

// A migration that changes column types under a running app: the next request (same
// connection, statement already prepared for the old version) stores by the new
// types. The migration runs through another Provisioner, as another process would.
func TestStatementsNeverCrossMigrations(t *testing.T) {
	a := newTenantName("stmv")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader})
	provisionAt(t, e, eventsV1, a)
	h := tenant.Middleware(e.mgr)(insertEvent)

	require.Equal(t, 201, do(h, "POST", "/?code=7&count=1", nil, "X-Tenant", a).Code)
	provisionAt(t, e, eventsV2, a) // migrates a to v2

	rec := do(h, "POST", "/?code=7", nil, "X-Tenant", a)
	require.Equal(t, 201, rec.Code, rec.Body.String())
	epoch, amount, code := storedEvent(t, e, a)
	assert.Equal(t, eventAt.Unix(), epoch, "stored by the new type: the instant")
	assert.Equal(t, eventAmount, amount, "stored by the new type: every digit")
	assert.Equal(t, "7", code)
	rec = do(h, "POST", "/?code=7&count=1", nil, "X-Tenant", a)
	require.Equal(t, 201, rec.Code, rec.Body.String())
	assert.Equal(t, "3", rec.Body.String())
}

// CopyFrom encodes each tenant's rows with that tenant's column types: pgx describes a
// table once per connection under a text that is the same for every tenant.
func TestCopyFromNeverCrossesTenants(t *testing.T) {
	a, b := newTenantName("cpya"), newTenantName("cpyb")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader})
	provisionAt(t, e, eventsV1, a)
	provisionAt(t, e, eventsV2, b)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rows := [][]any{{tenantctx.Schema(r.Context()), eventAt, eventAmount, "7"}}
		n, err := tenantctx.Session(r.Context()).CopyFrom(r.Context(), pgx.Identifier{"events"},
			[]string{"owner", "at", "amount", "code"}, pgx.CopyFromRows(rows))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = fmt.Fprint(w, n)
	}))
	for range 2 {
		rec := do(h, "POST", "/", nil, "X-Tenant", a)
		require.Equal(t, 200, rec.Code, rec.Body.String())
		epoch, amount, _ := storedEvent(t, e, a)
		assert.Equal(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Unix(), epoch)
		assert.Equal(t, "1.2345678901234568e+16", amount)

		rec = do(h, "POST", "/", nil, "X-Tenant", b)
		require.Equal(t, 200, rec.Code, rec.Body.String())
		assert.Equal(t, "1", rec.Body.String())
		epoch, amount, code := storedEvent(t, e, b)
		assert.Equal(t, eventAt.Unix(), epoch)
		assert.Equal(t, eventAmount, amount)
		assert.Equal(t, "7", code)
	}
}

// A request that arrives while a migration waits for the tenant's requests in flight
// queues behind the migration, then runs whole in the new version: its statements are
// prepared for the new column types. The migration runs through another Provisioner,
// as another process's would.
func TestRequestsQueueBehindAMigration(t *testing.T) {
	ctx := context.Background()
	a := newTenantName("mwait")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader})
	provisionAt(t, e, eventsV1, a)
	h := tenant.Middleware(e.mgr)(insertEvent)
	require.Equal(t, 201, do(h, "POST", "/?code=7", nil, "X-Tenant", a).Code) // prepared for v1

	inFlight, err := e.admin.Begin(ctx) // what a long request holds
	require.NoError(t, err)
	defer func() { _ = inFlight.Rollback(ctx) }()
	_, err = inFlight.Exec(ctx, "LOCK TABLE "+markerOf(t, e, a)+" IN ACCESS SHARE MODE")
	require.NoError(t, err)

	migrated := make(chan error, 1)
	go func() {
		p, err := schema.NewProvisioner(e.admin, schema.Config{Migrations: eventsV2, Logger: slogTo(e.logs)})
		if err == nil {
			err = p.Migrate(ctx, a)
		}
		migrated <- err
	}()
	waiting := func(n int) func() bool { // the migration, then the request too: each sends LOCK TABLE on its own
		return func() bool {
			return e.count(t, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%'`) == n
		}
	}
	require.Eventually(t, waiting(1), 10*time.Second, 10*time.Millisecond, "the migration waits for the request in flight")
	answered := make(chan int, 1)
	go func() { answered <- do(h, "POST", "/?code=7", nil, "X-Tenant", a).Code }()
	require.Eventually(t, waiting(2), 10*time.Second, 10*time.Millisecond, "the new request waits behind the migration")

	require.NoError(t, inFlight.Commit(ctx))
	require.NoError(t, <-migrated)
	assert.Equal(t, 201, <-answered)
	epoch, amount, code := storedEvent(t, e, a)
	assert.Equal(t, eventAt.Unix(), epoch, "stored by the new type")
	assert.Equal(t, eventAmount, amount, "stored by the new type")
	assert.Equal(t, "7", code)
}

// A request that cannot get past a migration within the session's lock_timeout (set in
// the DSN) answers 503 with Retry-After, not 500: waiting helps.
func TestRequestBehindAMigrationTimesOut(t *testing.T) {
	ctx := context.Background()
	a := newTenantName("mtime")
	e := newEnvOn(t, testdb.URL(t), 1, []pool.Option{pool.WithConfig(func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["lock_timeout"] = "200ms"
	})}, tenant.Config{Resolver: byHeader})
	provisionAt(t, e, eventsV1, a)
	h := tenant.Middleware(e.mgr)(insertEvent)
	require.Equal(t, 201, do(h, "POST", "/?code=7", nil, "X-Tenant", a).Code)

	migration, err := e.admin.Begin(ctx)
	require.NoError(t, err)
	_, err = migration.Exec(ctx, "LOCK TABLE "+markerOf(t, e, a)+" IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	rec := do(h, "POST", "/?code=7", nil, "X-Tenant", a)
	assert.Equal(t, 503, rec.Code)
	assert.Equal(t, "5", rec.Header().Get("Retry-After"))
	require.NoError(t, migration.Rollback(ctx))
	assert.Equal(t, 201, do(h, "POST", "/?code=7", nil, "X-Tenant", a).Code)
}

// A tenant dropped and provisioned again (by another process) at the same version has
// new types: statements prepared for the old schema are not used for the new one.
func TestStatementsNeverCrossARecreatedTenant(t *testing.T) {
	ctx := context.Background()
	tickets := fstest.MapFS{"001_tickets.sql": {Data: []byte(`CREATE TYPE status AS ENUM ('open', 'closed');
		CREATE TABLE tickets (id serial PRIMARY KEY, status status NOT NULL)`)}}
	a := newTenantName("recr")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader})
	provisionAt(t, e, tickets, a)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := tenantctx.Session(r.Context()).Exec(r.Context(), "INSERT INTO tickets (status) VALUES ($1)", "open"); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(201)
	}))
	require.Equal(t, 201, do(h, "POST", "/", nil, "X-Tenant", a).Code)

	other, err := schema.NewProvisioner(e.admin, schema.Config{Migrations: tickets})
	require.NoError(t, err)
	require.NoError(t, other.Drop(ctx, a))
	require.NoError(t, other.Ensure(ctx, a))
	rec := do(h, "POST", "/", nil, "X-Tenant", a)
	assert.Equal(t, 201, rec.Code, rec.Body.String())
	assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM "`+a+`".tickets`))
}
