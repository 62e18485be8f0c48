package tenant_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// soakAnswer is what every soak handler answers: the route it is, the tenant it ran
// for, and what it read.
type soakAnswer struct {
	Route  string   `json:"route"`
	Tenant string   `json:"tenant"`
	Rows   []string `json:"rows"`
}

// soakApp is a chi app whose handlers first probe their backend for anything an
// earlier request left (wrong schema or tenant marker, session settings, advisory
// locks, WITH HOLD cursors, temporary tables): any finding answers 500 "leak: ...".
// X-Conflict makes an attempt meet a serialization failure after its work (it is
// rolled back and runs again, and its backend serves on), X-Leave makes it leave
// session state behind.
type soakApp struct {
	t        *testing.T
	timeZone string
	attempts sync.Map // X-Request → *atomic.Int32
}

func (s *soakApp) routes(mw func(http.Handler) http.Handler) http.Handler {
	r := chi.NewRouter()
	r.Use(mw)
	r.Route("/api", func(r chi.Router) {
		r.Post("/events", s.handle("insert", s.insertEvent))
		r.Get("/events", s.handle("list", s.listOwners))
		r.Route("/admin", func(r chi.Router) { r.Get("/cursor", s.handle("cursor", s.holdCursor)) })
	})
	m := chi.NewRouter()
	m.Post("/import", s.handle("import", s.importRows))
	r.Mount("/m", m)
	r.Group(func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler { return next })
		r.Post("/g/savepoint/{n}", s.handle("savepoint", s.savepoints))
	})
	return r
}

func (s *soakApp) handle(route string, work func(r *http.Request, db tenantctx.DB) ([]string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, db, tenantName := r.Context(), tenantctx.Session(r.Context()), tenantctx.Schema(r.Context())
		if err := s.probe(ctx, db, tenantName); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		rows, err := work(r, db)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		n, _ := s.attempts.LoadOrStore(r.Header.Get("X-Request"), new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) == 1 && r.Header.Get("X-Conflict") != "" {
			_, _ = db.Exec(ctx, raise("40001", "could not serialize access"))
			return
		}
		if r.Header.Get("X-Leave") != "" {
			if _, err := db.Exec(ctx, "SET statement_timeout = 4321; SET TIME ZONE 'Asia/Tokyo'; "+
				"SELECT pg_advisory_lock(hashtext(current_schema()))"); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		_ = json.NewEncoder(w).Encode(soakAnswer{Route: route, Tenant: tenantName, Rows: rows})
	}
}

func (s *soakApp) probe(ctx context.Context, db tenantctx.DB, tenantName string) error {
	var schema, marker, timeout, zone string
	var locks, cursors int
	var noTemp bool
	err := db.QueryRow(ctx, `SELECT current_schema()::text, current_setting('tenant.schema'),
		current_setting('statement_timeout'), current_setting('TimeZone'),
		(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
		(SELECT count(*) FROM pg_cursors WHERE is_holdable), to_regclass('pg_temp.import_rows') IS NULL`).
		Scan(&schema, &marker, &timeout, &zone, &locks, &cursors, &noTemp)
	if err != nil {
		return err
	}
	got := fmt.Sprint(schema, marker, timeout, zone, locks, cursors, noTemp)
	if want := fmt.Sprint(tenantName, tenantName, "0", s.timeZone, 0, 0, true); got != want {
		return fmt.Errorf("leak: backend state %q, want %q", got, want)
	}
	return nil
}

// insertEvent inserts an event with this request's values and reads it back.
func (s *soakApp) insertEvent(r *http.Request, db tenantctx.DB) ([]string, error) {
	at, amount := soakValues(r.Header.Get("X-Request"))
	var id int
	if err := db.QueryRow(r.Context(), "INSERT INTO events (owner, at, amount, code) VALUES ($1, $2, $3, $4) RETURNING id",
		tenantctx.Schema(r.Context()), at, amount, "7").Scan(&id); err != nil {
		return nil, err
	}
	return readEvents(r.Context(), db, "WHERE id = $1", id)
}

func (s *soakApp) listOwners(r *http.Request, db tenantctx.DB) ([]string, error) {
	rows, err := db.Query(r.Context(), "SELECT DISTINCT owner FROM events")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// holdCursor reads through a WITH HOLD cursor and leaves it open.
func (s *soakApp) holdCursor(r *http.Request, db tenantctx.DB) ([]string, error) {
	if _, err := db.Exec(r.Context(), "DECLARE soak_cursor CURSOR WITH HOLD FOR SELECT DISTINCT owner FROM events"); err != nil {
		return nil, err
	}
	rows, err := db.Query(r.Context(), "FETCH 10 FROM soak_cursor")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// importRows stages rows in a temporary table and reads them back.
func (s *soakApp) importRows(r *http.Request, db tenantctx.DB) ([]string, error) {
	if _, err := db.Exec(r.Context(), "CREATE TEMP TABLE IF NOT EXISTS import_rows (owner text, n int); "+
		"INSERT INTO import_rows SELECT current_schema(), g FROM generate_series(1, 3) g"); err != nil {
		return nil, err
	}
	rows, err := db.Query(r.Context(), "SELECT owner || ':' || n FROM import_rows ORDER BY n")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// savepoints inserts in a savepoint it rolls back and in one it keeps.
func (s *soakApp) savepoints(r *http.Request, db tenantctx.DB) ([]string, error) {
	ctx, tenantName := r.Context(), tenantctx.Schema(r.Context())
	at, amount := soakValues(r.Header.Get("X-Request"))
	for _, keep := range []bool{false, true} {
		sp, err := db.Begin(ctx)
		if err != nil {
			return nil, err
		}
		code := "-1" // a number: code is an int at version 1, text at 2
		if keep {
			code = chi.URLParam(r, "n")
		}
		if _, err := sp.Exec(ctx, "INSERT INTO events (owner, at, amount, code) VALUES ($1, $2, $3, $4)", tenantName, at, amount, code); err != nil {
			return nil, err
		}
		if keep {
			err = sp.Commit(ctx)
		} else {
			err = sp.Rollback(ctx)
		}
		if err != nil {
			return nil, err
		}
	}
	return readEvents(ctx, db, "WHERE code IN ('-1', $1)", chi.URLParam(r, "n"))
}

// readEvents answers "owner|epoch|amount|code" per event.
func readEvents(ctx context.Context, db tenantctx.DB, where string, arg any) ([]string, error) {
	rows, err := db.Query(ctx, "SELECT owner || '|' || extract(epoch FROM at)::bigint || '|' || amount::text || '|' || code::text FROM events "+where+" ORDER BY id", arg)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// soakValues are one request's event values: a time in UTC+2 and an amount with more
// digits than a float8 keeps, both derived from the request id.
func soakValues(request string) (time.Time, string) {
	n, _ := strconv.Atoi(request)
	return eventAt.Add(time.Duration(n) * time.Minute), fmt.Sprintf("1%016d.%02d", n, n%100)
}

// wantEvent is the row a tenant at the given version stores for a request's values.
func wantEvent(tenantName string, version int, request, code string) string {
	at, amount := soakValues(request)
	if version == 1 { // timestamp: the wall clock; float8: the nearest double
		wall := time.Date(at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), at.Second(), 0, time.UTC)
		f, _ := strconv.ParseFloat(amount, 64)
		return fmt.Sprintf("%s|%d|%s|%s", tenantName, wall.Unix(), strconv.FormatFloat(f, 'g', -1, 64), code)
	}
	return fmt.Sprintf("%s|%d|%s|%s", tenantName, at.Unix(), amount, code)
}

// The cross-tenant soak: many tenants at two schema versions whose column types
// differ, a pool of three connections shared by eight clients, chi sub-routers,
// temporary tables, WITH HOLD cursors, savepoints, serialization failures and
// session state left behind on purpose. After every response: it came from the route
// asked for, ran in the tenant asked for, found no state of an earlier request, and
// every row it read or wrote is the tenant's own with exact values. After the run,
// each tenant's table holds exactly what its 2xx answers wrote (a 409, retries spent,
// wrote nothing).
func TestCrossTenantSoak(t *testing.T) {
	t.Parallel() // one of the long runs: they overlap, after the package's short tests
	const tenants, clients, each = 24, 8, 60
	e := newEnv(t, 3, tenant.Config{Resolver: byHeader})
	version := map[string]int{}
	var names []string
	for i := range tenants {
		name := newTenantName(fmt.Sprintf("soak%d", i))
		names = append(names, name)
		version[name] = 1 + i%2
		provisionAt(t, e, map[int]fs.FS{1: eventsV1, 2: eventsV2}[version[name]], name)
	}
	app := &soakApp{t: t}
	require.NoError(t, e.admin.QueryRow(context.Background(), "SHOW TimeZone").Scan(&app.timeZone))
	h := app.routes(tenant.Middleware(e.mgr))

	var mu sync.Mutex
	written := map[string][]string{} // tenant → rows its 2xx answers wrote
	var requests, retried, conflicts atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for i := range each {
				id := strconv.Itoa(c*each + i + 1)
				name := names[rng.IntN(len(names))]
				header := []string{"X-Tenant", name, "X-Request", id}
				if rng.IntN(4) == 0 {
					header = append(header, "X-Conflict", "1")
					retried.Add(1)
				}
				if rng.IntN(3) == 0 {
					header = append(header, "X-Leave", "1")
				}
				route, method, path := soakRoute(rng.IntN(5), id)
				rec := do(h, method, path, nil, header...)
				requests.Add(1)
				if rec.Code == 409 { // retries ran out: it must have written nothing (checked below)
					conflicts.Add(1)
					continue
				}
				if !assert.Equal(t, 200, rec.Code, "%s %s for %s: %s", method, path, name, rec.Body) {
					return
				}
				var got soakAnswer
				if !assert.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got)) {
					return
				}
				assert.Equal(t, route, got.Route)
				assert.Equal(t, name, got.Tenant)
				switch route {
				case "insert":
					want := wantEvent(name, version[name], id, "7")
					assert.Equal(t, []string{want}, got.Rows)
					mu.Lock()
					written[name] = append(written[name], want)
					mu.Unlock()
				case "savepoint":
					want := wantEvent(name, version[name], id, id)
					assert.Equal(t, []string{want}, got.Rows, "the rolled-back savepoint left nothing")
					mu.Lock()
					written[name] = append(written[name], want)
					mu.Unlock()
				case "import":
					assert.Equal(t, []string{name + ":1", name + ":2", name + ":3"}, got.Rows)
				default:
					for _, owner := range got.Rows {
						assert.Equal(t, name, owner)
					}
				}
			}
		})
	}
	wg.Wait()

	for _, name := range names {
		rows, err := e.admin.Query(context.Background(), `SELECT owner || '|' || extract(epoch FROM at)::bigint || '|' || amount::text || '|' || code::text
			FROM "`+name+`".events ORDER BY id`)
		require.NoError(t, err)
		stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		assert.ElementsMatch(t, written[name], stored, "tenant %s holds exactly what its 2xx answers wrote", name)
	}
	app2 := e.pool.Config().ConnConfig.RuntimeParams["application_name"]
	assert.Zero(t, e.count(t, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'`, app2))
	t.Logf("%d requests over %d tenants, %d with a conflict on their first attempt, %d answered 409",
		requests.Load(), tenants, retried.Load(), conflicts.Load())
	assert.Equal(t, int64(clients*each), requests.Load())
	assert.GreaterOrEqual(t, strings.Count(e.logs.String(), "transaction conflict, running again"), int(retried.Load()))
}

// soakRoute picks one of the app's routes.
func soakRoute(i int, id string) (route, method, path string) {
	switch i {
	case 0:
		return "insert", "POST", "/api/events"
	case 1:
		return "list", "GET", "/api/events"
	case 2:
		return "cursor", "GET", "/api/admin/cursor"
	case 3:
		return "import", "POST", "/m/import"
	default:
		return "savepoint", "POST", "/g/savepoint/" + id
	}
}
