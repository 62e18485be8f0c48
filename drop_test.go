package tenant_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// dropSeed is how many items each tenant of the drop tests starts with.
const dropSeed = 3

// dropApp is the application the drop tests serve: GET /read answers
// "<current_schema>|<seeded items>|<items of another schema>", POST /write inserts
// an item and answers "<its owner>|<seeded items>" with 201, GET /noquery answers the
// tenant without a query, and GET /hold reads, sends on held, waits for release and
// reads again, answering the first read when both agree. A handler that meets an
// error answers 500 with it, as an application would.
func dropApp(held chan<- struct{}, release <-chan struct{}) http.Handler {
	read := func(r *http.Request) (string, error) {
		var sp string
		var seeded, foreign int
		err := tenantctx.Session(r.Context()).QueryRow(r.Context(), `SELECT current_schema(),
			count(*) FILTER (WHERE name LIKE 'row%'), count(*) FILTER (WHERE owner <> current_schema()) FROM items`).
			Scan(&sp, &seeded, &foreign)
		return fmt.Sprintf("%s|%d|%d", sp, seeded, foreign), err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /read", func(w http.ResponseWriter, r *http.Request) {
		body, err := read(r)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = fmt.Fprint(w, body)
	})
	mux.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		var owner string
		var seeded int
		db := tenantctx.Session(r.Context())
		err := db.QueryRow(r.Context(), "INSERT INTO items (name) VALUES ($1) RETURNING owner", "w").Scan(&owner)
		if err == nil {
			err = db.QueryRow(r.Context(), "SELECT count(*) FROM items WHERE name LIKE 'row%'").Scan(&seeded)
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(201)
		_, _ = fmt.Fprintf(w, "%s|%d", owner, seeded)
	})
	mux.HandleFunc("GET /noquery", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, tenantctx.Schema(r.Context()))
	})
	mux.HandleFunc("GET /hold", func(w http.ResponseWriter, r *http.Request) {
		first, err := read(r)
		if err == nil {
			held <- struct{}{}
			<-release
			var second string
			if second, err = read(r); err == nil && second != first {
				err = fmt.Errorf("read %q, then %q", first, second)
			}
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = fmt.Fprint(w, first)
	})
	return mux
}

// stream is one client sending one kind of request for one tenant, over and over.
type stream struct {
	h             http.Handler
	method, path  string
	tenant        string
	ok            int    // the success status
	want          string // the success body
	wantAfter     string // the success body once Drop returned, if another
	goneAfterDrop bool   // a request sent after Drop returned must answer 404
	mayBeGone     bool   // 404 is a valid answer (the dropped tenant)
}

// bodies returns the success bodies a request may get, sent after Drop returned or
// before.
func (s *stream) bodies(afterDrop bool) []string {
	switch {
	case s.wantAfter == "":
		return []string{s.want}
	case afterDrop:
		return []string{s.wantAfter}
	}
	return []string{s.want, s.wantAfter}
}

// dropTraffic runs streams until each has sent before requests, calls during, then
// runs them until each has sent after more requests once during returned. It
// returns, per stream, how many requests succeeded; an answer that breaks the stream's
// rules fails the test.
func dropTraffic(t *testing.T, streams []*stream, before, after int, dropped *atomic.Bool, during func()) (successes []int) {
	t.Helper()
	successes = make([]int, len(streams))
	var ready, done sync.WaitGroup
	ready.Add(len(streams))
	done.Add(len(streams))
	stop := make(chan struct{})
	for i, s := range streams {
		go func() {
			defer done.Done()
			sent, sentAfter := 0, 0
			for {
				gone := dropped.Load()
				var rec = do(s.h, s.method, s.path, nil, "X-Tenant", s.tenant)
				switch {
				case rec.Code == s.ok && !(gone && s.goneAfterDrop):
					if assert.Contains(t, s.bodies(gone), rec.Body.String(), "%s %s for %s", s.method, s.path, s.tenant) {
						successes[i]++
					}
				case rec.Code == 404 && (s.mayBeGone || gone && s.goneAfterDrop):
				default:
					t.Errorf("%s %s for %s (after Drop: %v): %d %s", s.method, s.path, s.tenant, gone, rec.Code, rec.Body.String())
				}
				if sent++; sent == before {
					ready.Done()
				}
				if gone {
					sentAfter++
				}
				select {
				case <-stop:
					if sentAfter >= after || !dropped.Load() { // (when during failed)
						return
					}
				default:
				}
			}
		}()
	}
	ready.Wait()
	defer done.Wait()
	defer close(stop)
	during()
	return successes
}

// waitingForDrop waits until a DROP SCHEMA waits for a lock: for a transaction of the
// tenant in flight.
func waitingForDrop(t *testing.T, e *env) {
	t.Helper()
	require.Eventually(t, func() bool {
		return e.count(t, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
			AND query LIKE 'LOCK TABLE % IN ACCESS EXCLUSIVE MODE'`) > 0
	}, 10*time.Second, 5*time.Millisecond, "the drop waits for the tenant's transaction")
}

// waitingBehindDrop waits until a request waits for a lock on one of the tenant's
// relations (a lock a drop would not ask for).
func waitingBehindDrop(t *testing.T, e *env, tenantName string) {
	t.Helper()
	require.Eventually(t, func() bool {
		return e.count(t, `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE NOT l.granted AND l.mode <> 'AccessExclusiveLock' AND c.relnamespace = $1::regnamespace`, tenantName) > 0
	}, 10*time.Second, 5*time.Millisecond, "a request waits behind the drop")
}

// Manager.Drop under traffic: requests for the dropped tenant in flight finish or
// answer 404, never 500 or 503; other tenants' requests all succeed with their exact
// data; once Drop returned, this process answers 404 at once, and another process
// sharing the database (a replica) at its next query, or within its HitTTL when the
// handler sends no query. Drop waits for a transaction of the tenant in flight, and
// requests that begin meanwhile wait for it, then answer 404. A tenant provisioned
// again under the same name is served with fresh statements on connections that
// prepared the old one's.
func TestDropDuringTraffic(t *testing.T) {
	ctx := context.Background()
	x, y, z := newTenantName("dropx"), newTenantName("dropy"), newTenantName("dropz")
	const hitTTL = 100 * time.Millisecond
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, x, y, z)
	e.seedItems(t, dropSeed, x, y, z)
	replica := newEnv(t, 2, tenant.Config{Resolver: byHeader, HitTTL: hitTTL, MissTTL: time.Nanosecond})
	held, release := make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce() // a failure must not leave the held request (and its connection) waiting
	local, remote := tenant.Middleware(e.mgr)(dropApp(held, release)), tenant.Middleware(replica.mgr)(dropApp(held, release))

	seeded := func(name string) string { return fmt.Sprintf("%s|%d|0", name, dropSeed) }
	written := func(name string) string { return fmt.Sprintf("%s|%d", name, dropSeed) }
	streams := []*stream{
		{h: local, method: "GET", path: "/read", tenant: x, ok: 200, want: seeded(x), goneAfterDrop: true, mayBeGone: true},
		{h: local, method: "POST", path: "/write", tenant: x, ok: 201, want: written(x), goneAfterDrop: true, mayBeGone: true},
		{h: local, method: "GET", path: "/noquery", tenant: x, ok: 200, want: x, goneAfterDrop: true, mayBeGone: true},
		{h: remote, method: "GET", path: "/read", tenant: x, ok: 200, want: seeded(x), goneAfterDrop: true, mayBeGone: true},
		{h: remote, method: "POST", path: "/write", tenant: x, ok: 201, want: written(x), goneAfterDrop: true, mayBeGone: true},
		{h: remote, method: "GET", path: "/noquery", tenant: x, ok: 200, want: x, mayBeGone: true}, // until its HitTTL
		{h: local, method: "GET", path: "/read", tenant: y, ok: 200, want: seeded(y)},
		{h: local, method: "POST", path: "/write", tenant: y, ok: 201, want: written(y)},
		{h: local, method: "GET", path: "/read", tenant: z, ok: 200, want: seeded(z)},
		{h: remote, method: "POST", path: "/write", tenant: z, ok: 201, want: written(z)},
		{h: remote, method: "GET", path: "/read", tenant: y, ok: 200, want: seeded(y)},
	}
	var dropped atomic.Bool
	var droppedAt time.Time
	successes := dropTraffic(t, streams, 5, 5, &dropped, func() {
		holding := make(chan int, 1)
		go func() { holding <- do(local, "GET", "/hold", nil, "X-Tenant", x).Code }()
		<-held // a transaction of x holds its marker
		dropErr := make(chan error, 1)
		go func() { dropErr <- e.mgr.Drop(ctx, x) }()
		waitingForDrop(t, e)
		// A request that begins now queues for the marker behind the drop, and then
		// finds the tenant gone.
		meanwhile := make(chan int, 1)
		go func() { meanwhile <- do(local, "GET", "/read", nil, "X-Tenant", x).Code }()
		waitingBehindDrop(t, e, x)
		releaseOnce()
		assert.Equal(t, 200, <-holding, "the transaction in flight finishes")
		require.NoError(t, <-dropErr)
		droppedAt = time.Now()
		dropped.Store(true)
		assert.Equal(t, 404, <-meanwhile, "a request that waited for the drop")
	})
	for i, s := range streams {
		if s.tenant != x {
			want := successes[i]
			if s.method == "POST" {
				want = e.count(t, `SELECT count(*) FROM "`+s.tenant+`".items WHERE name = 'w'`)
			}
			assert.Positive(t, successes[i], "%s %s for %s", s.method, s.path, s.tenant)
			assert.Equal(t, want, successes[i], "every write answered 201 is there, and only those")
		}
	}
	for _, h := range []http.Handler{local, remote} {
		assert.Equal(t, 404, do(h, "GET", "/read", nil, "X-Tenant", x).Code)
	}
	assert.Equal(t, 404, do(local, "GET", "/noquery", nil, "X-Tenant", x).Code)
	time.Sleep(time.Until(droppedAt.Add(hitTTL))) // the documented bound, not a guess
	assert.Equal(t, 404, do(remote, "GET", "/noquery", nil, "X-Tenant", x).Code, "the replica within its HitTTL")

	// Provisioned again under the same name (a new OID): the replica's connections
	// prepared statements for the old tenant; the new one gets its own.
	require.NoError(t, e.mgr.Provisioner().Ensure(ctx, x))
	for range 4 {
		rec := do(remote, "POST", "/write", nil, "X-Tenant", x)
		assert.Equal(t, 201, rec.Code, rec.Body.String())
		assert.Equal(t, x+"|0", rec.Body.String())
	}
	rec := do(remote, "GET", "/read", nil, "X-Tenant", x)
	assert.Equal(t, x+"|0|0", rec.Body.String())
	assert.Equal(t, 4, e.count(t, `SELECT count(*) FROM "`+x+`".items`))
	assert.NotContains(t, e.logs.String()+replica.logs.String(), "level=ERROR")
}

// Under AutoCreate a dropped tenant is provisioned again, empty, by its next request:
// requests in flight during the drop get the old tenant's data or the new one's,
// never an error; requests sent after Drop returned get the new one's.
func TestDropDuringTrafficAutoCreate(t *testing.T) {
	ctx := context.Background()
	x := newTenantName("dropa")
	e := newEnv(t, 3, tenant.Config{Resolver: byHeader, Admission: tenant.AutoCreate(nil)}, x)
	e.seedItems(t, dropSeed, x)
	app := tenant.Middleware(e.mgr)(dropApp(nil, nil))
	streams := []*stream{
		{h: app, method: "GET", path: "/read", tenant: x, ok: 200, want: fmt.Sprintf("%s|%d|0", x, dropSeed), wantAfter: x + "|0|0"},
		{h: app, method: "POST", path: "/write", tenant: x, ok: 201, want: fmt.Sprintf("%s|%d", x, dropSeed), wantAfter: x + "|0"},
		{h: app, method: "GET", path: "/noquery", tenant: x, ok: 200, want: x},
	}
	var dropped atomic.Bool
	oid := e.count(t, `SELECT oid::int FROM pg_namespace WHERE nspname = $1`, x)
	dropTraffic(t, streams, 5, 5, &dropped, func() {
		require.NoError(t, e.mgr.Drop(ctx, x))
		dropped.Store(true)
	})
	assert.NotEqual(t, oid, e.count(t, `SELECT oid::int FROM pg_namespace WHERE nspname = $1`, x), "provisioned again")
	assert.Zero(t, e.count(t, `SELECT count(*) FROM "`+x+`".items WHERE name LIKE 'row%'`), "empty")
	assert.NotContains(t, e.logs.String(), "level=ERROR")
}
