package tenant_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// transactionMode answers the request transaction's isolation level and read-only
// setting.
var transactionMode = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	var iso, ro string
	err := tenantctx.Session(r.Context()).QueryRow(r.Context(),
		"SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')").Scan(&iso, &ro)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	_, _ = fmt.Fprint(w, iso+" "+ro)
})

// One Manager, an isolation level per route: a route doing an atomic
// UPDATE ... RETURNING runs READ COMMITTED and needs no retries under contention.
func TestIsolationPerRoute(t *testing.T) {
	a := newTenantName("iso")
	e := newEnv(t, 4, tenant.Config{Resolver: byHeader}, a)
	increment := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v int
		if err := tenantctx.Session(r.Context()).QueryRow(r.Context(),
			"UPDATE counter SET value = value + 1 WHERE id = 1 RETURNING value").Scan(&v); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = fmt.Fprint(w, v)
	})
	r := chi.NewRouter()
	r.Use(tenant.Middleware(e.mgr))
	r.Get("/mode", transactionMode)
	r.With(tenant.Isolation(pgx.ReadCommitted)).Get("/rc/mode", transactionMode)
	r.With(tenant.Isolation(pgx.ReadCommitted)).Post("/rc/counter", increment)

	assert.Equal(t, "serializable off", do(r, "GET", "/mode", nil, "X-Tenant", a).Body.String())
	assert.Equal(t, "read committed off", do(r, "GET", "/rc/mode", nil, "X-Tenant", a).Body.String())

	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 25 {
				assert.Equal(t, 200, do(r, "POST", "/rc/counter", nil, "X-Tenant", a).Code)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 400, e.count(t, `SELECT value FROM "`+a+`".counter`))
	assert.NotContains(t, e.logs.String(), "transaction conflict", "no retries were needed")
	assert.Panics(t, func() { tenant.Isolation("chaos") })
}

// A handler (or Run's function) may choose its transaction's isolation level and
// read-only mode itself, before its first query; after it, they are refused.
func TestSetIsolationPerRequest(t *testing.T) {
	a := newTenantName("isr")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	var late error
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !assert.NoError(t, tenant.SetIsolation(r.Context(), pgx.RepeatableRead)) {
			return
		}
		if !assert.NoError(t, tenant.SetReadOnly(r.Context())) {
			return
		}
		transactionMode(w, r)
		late = tenant.SetIsolation(r.Context(), pgx.ReadCommitted)
	}))
	assert.Equal(t, "repeatable read on", do(h, "GET", "/", nil, "X-Tenant", a).Body.String())
	assert.ErrorIs(t, late, tenant.ErrTransactionBegun)

	require.NoError(t, e.mgr.Run(context.Background(), a, func(ctx context.Context) error {
		require.NoError(t, tenant.SetIsolation(ctx, pgx.ReadCommitted))
		var iso string
		require.NoError(t, tenantctx.Session(ctx).QueryRow(ctx, "SELECT current_setting('transaction_isolation')").Scan(&iso))
		assert.Equal(t, "read committed", iso)
		return nil
	}))
	assert.Error(t, tenant.SetReadOnly(context.Background()), "outside a request")
}

// exportRows is how many rows the export below writes: about 2 MB of CSV, twice the
// default buffer.
const exportRows = 20_000

// An export that writes its CSV while it reads the rows streams once the body passes
// the buffer. On a ReadOnly route its transaction stays open while it streams (it
// cannot lose a write), so the whole export arrives; on a route that may write, the
// transaction must end before the first byte, with rows open: it fails, and the log
// says how to stream.
func TestReadOnlyExportStreams(t *testing.T) {
	a := newTenantName("exp")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	_, err := e.admin.Exec(context.Background(), `INSERT INTO "`+a+`".items (name)
		SELECT 'item number ' || g || ', exported with enough text to make each line about a hundred bytes' FROM generate_series(1, $1) g`, exportRows)
	require.NoError(t, err)
	export := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rows, err := tenantctx.Session(r.Context()).Query(r.Context(), "SELECT id, name FROM items ORDER BY id")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer rows.Close()
		w.Header().Set("Content-Type", "text/csv")
		for rows.Next() {
			var id int
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				return
			}
			_, _ = fmt.Fprintf(w, "%d,%q\n", id, name)
		}
	})
	r := chi.NewRouter()
	r.Use(tenant.Middleware(e.mgr))
	r.With(tenant.ReadOnly()).Get("/export", export)
	r.Get("/export-rw", export)
	srv := httptest.NewServer(r)
	defer srv.Close()
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("X-Tenant", a)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := get("/export")
	assert.Equal(t, 200, code)
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	require.Len(t, lines, exportRows)
	assert.Greater(t, len(body), tenant.DefaultBufferBytes+tenant.DefaultBufferBytes/2, "it streamed: about 2 MB")
	assert.True(t, strings.HasPrefix(lines[exportRows-1], fmt.Sprint(exportRows)+`,"item number `+fmt.Sprint(exportRows)), lines[exportRows-1])
	assert.Zero(t, e.pool.Stat().AcquiredConns())

	code, body = get("/export-rw")
	assert.Equal(t, "500 commit failed\n", fmt.Sprint(code, " ", body))
	assert.Contains(t, e.logs.String(), "tenant.ReadOnly to stream while reading")
}

// Server-sent events that query as they go: on a ReadOnly route each event's query
// runs in the request's transaction, open while the stream is.
func TestReadOnlyEventStreamQueries(t *testing.T) {
	a := newTenantName("sseq")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	e.seedItems(t, 3, a)
	next := make(chan struct{})
	r := chi.NewRouter()
	r.Use(tenant.Middleware(e.mgr))
	r.With(tenant.ReadOnly()).Get("/events", func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		for i := range 2 {
			var n int
			if err := db.QueryRow(r.Context(), "SELECT count(*) FROM items").Scan(&n); err != nil {
				_, _ = fmt.Fprintf(w, "event: error\ndata: %v\n\n", err)
				return
			}
			_, _ = fmt.Fprintf(w, "data: %d items\n\n", n+i)
			w.(http.Flusher).Flush()
			if i == 0 {
				<-next
			}
		}
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/events", nil)
	req.Header.Set("X-Tenant", a)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: 3 items\n", line, "the first event arrived while the handler waits")
	close(next)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, "\ndata: 4 items\n\n", string(rest), "the second event's query ran in the open transaction")
}
