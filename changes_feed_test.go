package tenant_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/changes"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/tenantctx"
)

// A subscriber that never reads does not slow requests or other subscribers: a
// statement of more changes than its buffer, then requests, complete while it sleeps;
// an attentive subscriber gets every change; the sleeper gets its buffer's worth, then
// misses changes, and its next delivered change says so.
func TestChangesSlowSubscriber(t *testing.T) {
	a := newTenantName("slow")
	e := signalEnv(t, a)
	slow := subscribe(t, e.mgr, changes.Filter{Schema: a})
	fast := attentive(subscribe(t, e.mgr, changes.Filter{Schema: a}), changes.Buffer+600)

	const rows = changes.Buffer + 500
	e.exec(t, `INSERT INTO "`+a+`".docs (title) SELECT 'bulk' FROM generate_series(1, $1)`, rows)
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "INSERT INTO docs (title) VALUES ($1)", "request")
		require.NoError(t, err)
	}))
	start := time.Now()
	for range 20 {
		require.Equal(t, http.StatusOK, do(h, "POST", "/", nil, "X-Tenant", a).Code)
	}
	t.Logf("20 requests while a subscriber sleeps: %v", time.Since(start))

	for i := 1; i <= rows+20; i++ {
		c := receive(t, fast)
		require.False(t, c.Missed)
		require.Equal(t, []string{fmt.Sprint(i)}, c.Key)
	}
	for i := 1; i <= changes.Buffer; i++ {
		c := next(t, slow)
		require.False(t, c.Missed)
		require.Equal(t, []string{fmt.Sprint(i)}, c.Key)
	}
	mark := e.mark(t, a, "after")
	mark.Missed = true
	assert.Equal(t, mark, next(t, slow), "the changes that did not fit are gone, and the next says so")
	receive(t, fast)
	mark = e.mark(t, a, "caught up")
	assert.Equal(t, mark, next(t, slow))
}

// When the listening connection is lost (a restart, a terminated backend), the Feed
// connects again; the changes sent meanwhile are lost, so each subscription's next
// change says Missed.
func TestChangesConnectionLost(t *testing.T) {
	a := newTenantName("lost")
	e := signalEnv(t, a)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})
	var killed int
	require.NoError(t, e.admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN %' AND application_name = $1`, e.pool.Config().ConnConfig.RuntimeParams["application_name"]).Scan(&killed))
	require.Equal(t, 1, killed)
	assert.Contains(t, waitLog(t, e, "changes: connection lost"), "listening again")

	deadline := time.Now().Add(10 * time.Second)
	for {
		mark := e.mark(t, a, "after")
		select {
		case c := <-sub.C:
			mark.Missed = true
			assert.Equal(t, mark, c)
			return
		case <-time.After(200 * time.Millisecond): // not listening yet: the mark is lost
		}
		require.True(t, time.Now().Before(deadline), "not listening again within 10 s")
	}
}

// waitLog waits for the Manager's log to mention s, and returns it.
func waitLog(t *testing.T, e *env, s string) string {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(e.logs.String(), s) }, 10*time.Second, 10*time.Millisecond)
	return e.logs.String()
}

// Close ends a subscription (its channel closes, others go on); Manager.Close ends
// them all; Subscribe on a closed Manager fails.
func TestChangesClose(t *testing.T) {
	a := newTenantName("close")
	e := signalEnv(t, a)
	gone := subscribe(t, e.mgr, changes.Filter{Schema: a})
	stays := subscribe(t, e.mgr, changes.Filter{Schema: a})
	gone.Close()
	gone.Close()
	_, open := <-gone.C
	assert.False(t, open)
	mark := e.mark(t, a, "m")
	assert.Equal(t, mark, next(t, stays))

	e.mgr.Close()
	_, open = <-stays.C
	assert.False(t, open)
	_, err := e.mgr.Subscribe(t.Context(), changes.Filter{})
	assert.ErrorIs(t, err, changes.ErrClosed)
}

// Subscribe fails, saying why, when it cannot listen; it does not wait forever.
func TestChangesCannotListen(t *testing.T) {
	e := newEnv(t, 1, tenant.Config{ChangesDSN: "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"})
	_, err := e.mgr.Subscribe(t.Context(), changes.Filter{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "changes: listen")
}

// track_schema_changes tracks every table of the migration's schema that has a
// primary key; track_changes refuses a table without one (changes carry keys), and
// untrack_changes stops the signals.
func TestTrackChanges(t *testing.T) {
	a := newTenantName("track")
	migrations := fstest.MapFS{
		"001_tables.sql": {Data: []byte(`CREATE TABLE one (id int PRIMARY KEY); CREATE TABLE two (id int PRIMARY KEY);
			CREATE TABLE keyless (x int); SELECT tenant_registry.track_schema_changes();`)},
		"002_untrack.sql": {Data: []byte(`SELECT tenant_registry.untrack_changes('two')`)},
	}
	e := newEnv(t, 1, tenant.Config{Migrations: migrations}, a)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})
	e.exec(t, `INSERT INTO "`+a+`".keyless VALUES (1); INSERT INTO "`+a+`".two VALUES (2); INSERT INTO "`+a+`".one VALUES (1)`)
	assert.Equal(t, changes.Change{Schema: a, Table: "one", Op: changes.Insert, Key: []string{"1"}}, next(t, sub))

	_, err := e.admin.Exec(t.Context(), `SELECT tenant_registry.track_changes('"`+a+`".keyless')`)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%v", err)
	assert.Equal(t, "42P16", pgErr.Code)
	assert.Contains(t, pgErr.Message, "has no primary key")
}

// A tenant signed up from the stock of spare schemas reports its changes under its own
// name: the triggers came with the migrated spare, and read the schema's name when
// they fire.
func TestChangesFromStock(t *testing.T) {
	ctx := t.Context()
	e := newEnvOn(t, testdb.NewDatabase(t), 2, nil, tenant.Config{Migrations: signalMigrations, Spares: 1})
	prov := e.mgr.Provisioner()
	require.NoError(t, prov.FillStock(ctx))
	var spareOID uint32
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT schema_oid FROM tenant_registry.tenants WHERE state = 'spare'`).Scan(&spareOID))

	a := newTenantName("stock")
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})
	require.NoError(t, prov.Create(ctx, a))
	tn, err := prov.Lookup(ctx, a)
	require.NoError(t, err)
	require.Equal(t, spareOID, tn.OID, "the spare, renamed")

	_, err = e.pool.Exec(ctx, `INSERT INTO "`+a+`".docs (id, title) VALUES (5, 'signed up')`)
	require.NoError(t, err)
	assert.Equal(t, changes.Change{Schema: a, Table: "docs", Op: changes.Insert, Key: []string{"5"}}, next(t, sub))
	e.mgr.Close()
}
