package tenant_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/pgserver"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// The CI-sized defaults; `make stress` runs minutes with more restarts.
var (
	stressDuration = flag.Duration("stress.duration", 8*time.Second, "how long TestStress sends requests")
	stressRestarts = flag.Int("stress.restarts", 2, "PostgreSQL restarts during TestStress, alternately fast and immediate (a crash)")
	stressClients  = flag.Int("stress.clients", 32, "concurrent clients of TestStress")
	stressTenants  = flag.Int("stress.tenants", 50, "tenants of TestStress, half at each of two schema versions")
)

// stressApp is the application name of the Manager's connections: the faults pick
// their victims by it.
const stressApp = "tenant_stress"

// Two schema versions whose amount column differs in type: a statement prepared for
// one must never run for the other.
var (
	stressV1 = fstest.MapFS{"001_items.sql": {Data: []byte(`
CREATE TABLE items (token text PRIMARY KEY, owner text NOT NULL DEFAULT current_schema(), amount int NOT NULL);
CREATE TABLE counter (id int PRIMARY KEY, value int NOT NULL);
INSERT INTO counter VALUES (1, 0);`)}}
	stressV2 = fstest.MapFS{
		"001_items.sql":  stressV1["001_items.sql"],
		"002_amount.sql": {Data: []byte(`ALTER TABLE items ALTER amount TYPE text`)},
	}
)

// stressRoutes: POST /items?token= inserts a row and bumps the counter in the same
// transaction; GET /items answers what the request sees: "schema|tenant
// setting|owners|rows|counter".
func stressRoutes(attempts *atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		ctx, db := r.Context(), tenantctx.Session(r.Context())
		if _, err := db.Exec(ctx, "INSERT INTO items (token, amount) VALUES ($1, $2)", r.URL.Query().Get("token"), "7"); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if _, err := db.Exec(ctx, "UPDATE counter SET value = value + 1 WHERE id = 1"); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /items", func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		var seen [5]string
		err := tenantctx.Session(r.Context()).QueryRow(r.Context(), `SELECT current_schema(), current_setting('tenant.schema'),
			coalesce((SELECT string_agg(DISTINCT owner, ',') FROM items), ''), (SELECT count(*) FROM items)::text,
			(SELECT value FROM counter WHERE id = 1)::text`).Scan(&seen[0], &seen[1], &seen[2], &seen[3], &seen[4])
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = io.WriteString(w, strings.Join(seen[:], "|"))
	})
	return mux
}

// stressWrite is one POST and its answer (0: none came).
type stressWrite struct {
	token, tenant string
	status        int
	inDoubt       bool // answered "commit outcome unknown"
}

// stressTally is what the clients saw.
type stressTally struct {
	mu       sync.Mutex
	writes   []stressWrite
	reads    int
	statuses map[int]int
	inDoubt  int      // answers "commit outcome unknown"
	leaks    []string // reads that saw another tenant, or a counter out of step with its rows
}

func (s *stressTally) add(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses[status]++
	if strings.TrimSpace(body) == tenant.ErrCommitUnknown.Error() {
		s.inDoubt++
	}
}

// The reliability run: clients write and read across tenants at two schema versions
// through a small pool while backends are terminated at random and the server
// restarts (a fast shutdown, then a crash). Afterwards every write answered 2xx is in
// its tenant exactly once, no other write is anywhere, no row is in another tenant's
// schema, every counter equals its rows, no connection is left in a transaction, and
// every tenant is served again without restarting anything. RELIABILITY.md has the
// figures of `make stress`.
func TestStress(t *testing.T) {
	t.Parallel() // one of the long runs: they overlap, after the package's short tests
	ctx := context.Background()
	srv, err := pgserver.Start(ctx, pgserver.Options{Settings: []string{"synchronous_commit=on"}})
	require.NoError(t, err, pgserver.InstallHint)
	t.Cleanup(func() { _ = srv.Stop() })

	admin, err := pgxpool.New(ctx, srv.URL+"&application_name=stress_admin&pool_max_conns=2")
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	p, err := pool.New(ctx, srv.URL, pool.WithMaxConns(6), pool.WithConfig(func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["application_name"] = stressApp
	}))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	mgr, err := tenant.New(ctx, tenant.Config{Pool: p, Resolver: byHeader, Migrations: stressV2, Logger: slogTo(io.Discard)})
	require.NoError(t, err)
	t.Cleanup(mgr.Close)
	older, err := schema.NewProvisioner(admin, schema.Config{Migrations: stressV1, Logger: slogTo(io.Discard)})
	require.NoError(t, err)
	tenants := make([]string, *stressTenants)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("stress_%03d", i)
		prov := mgr.Provisioner()
		if i%2 == 1 {
			prov = older
		}
		require.NoError(t, prov.Ensure(ctx, tenants[i]))
	}

	var attempts atomic.Int64
	app := httptest.NewServer(tenant.Middleware(mgr)(stressRoutes(&attempts)))
	t.Cleanup(app.Close)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *stressClients}}
	tally := &stressTally{statuses: map[int]int{}}

	load, stop := context.WithTimeout(ctx, *stressDuration)
	defer stop()
	var faults stressFaults
	var wg sync.WaitGroup
	wg.Go(func() { faults.terminate(load, admin) })
	wg.Go(func() { faults.restart(load, t, srv, *stressRestarts, *stressDuration) })
	for c := range *stressClients {
		wg.Go(func() {
			for n := 0; load.Err() == nil; n++ {
				name := tenants[rand.IntN(len(tenants))]
				if rand.IntN(2) == 0 {
					stressRead(client, app.URL, name, tally)
				} else {
					tally.write(client, app.URL, name, fmt.Sprintf("c%d-%d", c, n))
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, *stressRestarts, int(faults.restarts.Load()), "restarts done")

	// The app recovers by itself: once the database answers, every tenant is served.
	require.Eventually(t, func() bool {
		return stressRead(client, app.URL, tenants[0], &stressTally{statuses: map[int]int{}}) == http.StatusOK
	}, time.Minute, 50*time.Millisecond)
	for i, name := range tenants {
		assert.Equal(t, http.StatusCreated, tally.write(client, app.URL, name, fmt.Sprintf("final-%d", i)), name)
		assert.Equal(t, http.StatusOK, stressRead(client, app.URL, name, tally), name)
	}
	mgr.WaitAfterCommit()

	inTransaction := countRow(t, admin, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'", stressApp)
	assert.Zero(t, inTransaction, "connections left in a transaction")
	assert.Zero(t, countRow(t, admin, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = $1 AND l.locktype = 'advisory'`, stressApp), "advisory locks left")

	v := verifyStress(t, admin, tenants, tally.writes)
	assert.Empty(t, tally.leaks, "reads that saw another tenant")
	assert.Zero(t, v.missing, "2xx writes not in the database")
	assert.Zero(t, v.unexpected, "non-2xx writes in the database")
	assert.Zero(t, v.misplaced, "rows in another tenant's schema, or never sent")
	assert.Zero(t, v.counterOff, "tenants whose counter is not their rows")
	assert.Zero(t, tally.statuses[0], "requests without an answer")
	assert.Positive(t, faults.busy.Load(), "backends terminated in a transaction")
	assert.Greater(t, v.ok, len(tally.writes)/2, "most writes succeed")

	requests := len(tally.writes) + tally.reads
	t.Logf("stress: %d clients, %d tenants, %s, restarts %d | requests %d (writes %d, reads %d), attempts %d | "+
		"backends terminated %d (%d in a transaction) | answers %v | writes verified %d (2xx %d, other %d) | "+
		"leaks %d, lost 2xx writes %d, kept failed writes %d, misplaced rows %d, counters off %d, left in transaction %d | in doubt %d (writes %d)",
		*stressClients, len(tenants), *stressDuration, faults.restarts.Load(), requests, len(tally.writes), tally.reads, attempts.Load(),
		faults.terminated.Load(), faults.busy.Load(), tally.statuses, len(tally.writes), v.ok, len(tally.writes)-v.ok,
		len(tally.leaks), v.missing, v.unexpected, v.misplaced, v.counterOff, inTransaction, tally.inDoubt, v.inDoubt)
}

// write sends one POST and records its answer.
func (s *stressTally) write(client *http.Client, base, name, token string) int {
	var body string
	status := stressDo(client, "POST", base+"/items?token="+token, name, &body)
	s.mu.Lock()
	s.writes = append(s.writes, stressWrite{token: token, tenant: name, status: status,
		inDoubt: strings.TrimSpace(body) == tenant.ErrCommitUnknown.Error()})
	s.mu.Unlock()
	s.add(status, body)
	return status
}

// stressRead sends one GET and checks what it saw: its own schema and rows only, and a
// counter in step with them (a write is all or nothing).
func stressRead(client *http.Client, base, name string, tally *stressTally) int {
	var body string
	status := stressDo(client, "GET", base+"/items", name, &body)
	tally.add(status, body)
	tally.mu.Lock()
	defer tally.mu.Unlock()
	tally.reads++
	if status == http.StatusOK {
		seen := strings.Split(body, "|")
		if len(seen) != 5 || seen[0] != name || seen[1] != name || (seen[2] != "" && seen[2] != name) || seen[3] != seen[4] {
			tally.leaks = append(tally.leaks, name+": "+body)
		}
	}
	return status
}

// stressDo sends a request for tenant name; status 0 means no answer came.
func stressDo(client *http.Client, method, url, name string, body *string) int {
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("X-Tenant", name)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0
	}
	if body != nil {
		*body = string(b)
	}
	return resp.StatusCode
}

// stressVerdict counts what the database holds against what the clients were told.
type stressVerdict struct{ ok, inDoubt, missing, unexpected, misplaced, counterOff int }

func verifyStress(t *testing.T, admin *pgxpool.Pool, tenants []string, writes []stressWrite) stressVerdict {
	t.Helper()
	ctx := context.Background()
	sent := map[string]stressWrite{}
	for _, w := range writes {
		sent[w.token] = w
	}
	found := map[string][]string{} // token → the schemas holding it
	var v stressVerdict
	for _, name := range tenants {
		rows, err := admin.Query(ctx, "SELECT token, owner FROM "+pgx.Identifier{name, "items"}.Sanitize())
		require.NoError(t, err)
		n := 0
		for rows.Next() {
			var token, owner string
			require.NoError(t, rows.Scan(&token, &owner))
			n++
			found[token] = append(found[token], name)
			if w, ok := sent[token]; owner != name || !ok || w.tenant != name {
				v.misplaced++
				t.Logf("misplaced: %s in %s (owner %s, sent %+v)", token, name, owner, w)
			}
		}
		require.NoError(t, rows.Err())
		var counter int
		require.NoError(t, admin.QueryRow(ctx, "SELECT value FROM "+pgx.Identifier{name, "counter"}.Sanitize()).Scan(&counter))
		if counter != n {
			v.counterOff++
			t.Logf("counter of %s is %d for %d rows", name, counter, n)
		}
	}
	for _, w := range writes {
		ok := w.status >= 200 && w.status < 300
		if ok {
			v.ok++
		}
		if w.inDoubt {
			v.inDoubt++
		}
		switch where := found[w.token]; {
		case ok && !slices.Equal(where, []string{w.tenant}):
			v.missing++
			t.Logf("2xx write %s for %s found in %v", w.token, w.tenant, where)
		case !ok && w.inDoubt && len(where) > 0: // "commit outcome unknown" promises neither
			t.Logf("write %s answered %d (in doubt) committed, in %v", w.token, w.status, where)
		case !ok && len(where) > 0:
			v.unexpected++
			t.Logf("write %s answered %d found in %v", w.token, w.status, where)
		}
	}
	return v
}

// stressFaults terminates the app's backends and restarts the server.
type stressFaults struct {
	terminated, busy, restarts atomic.Int64
}

// terminate ends one of the app's backends every 20–150 ms, one in a transaction or
// running a query when there is one, until ctx ends.
func (f *stressFaults) terminate(ctx context.Context, admin *pgxpool.Pool) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(20+rand.IntN(130)) * time.Millisecond):
		}
		var state string
		err := admin.QueryRow(ctx, `SELECT state FROM (SELECT state, pg_terminate_backend(pid) AS done FROM pg_stat_activity
			WHERE application_name = $1 ORDER BY state = 'idle', random() LIMIT 1) victim WHERE done`, stressApp).Scan(&state)
		if err == nil {
			f.terminated.Add(1)
			if state != "idle" {
				f.busy.Add(1)
			}
		}
	}
}

// restart restarts the server n times, evenly over the run, alternately in fast and
// immediate mode.
func (f *stressFaults) restart(ctx context.Context, t *testing.T, srv *pgserver.Server, n int, over time.Duration) {
	for i := range n {
		select {
		case <-ctx.Done():
			return
		case <-time.After(over / time.Duration(n+1)):
		}
		mode := []string{"fast", "immediate"}[i%2]
		if err := srv.Restart(context.Background(), mode); err != nil {
			t.Errorf("restart (%s): %v", mode, err)
			return
		}
		f.restarts.Add(1)
	}
}
