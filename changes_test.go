package tenant_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/changes"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/tenantctx"
)

// signalMigrations track docs, pairs (a two-column key) and big (long text keys), and
// leave plain untracked.
var signalMigrations = fstest.MapFS{
	"001_tables.sql": {Data: []byte(`
		CREATE TABLE docs (id bigserial PRIMARY KEY, title text NOT NULL);
		CREATE TABLE pairs (a int, b text, PRIMARY KEY (b, a));
		CREATE TABLE big (k text PRIMARY KEY);
		CREATE TABLE plain (id int PRIMARY KEY);
		SELECT tenant_registry.track_changes('docs');
		SELECT tenant_registry.track_changes('pairs');
		SELECT tenant_registry.track_changes('big');`)},
}

// signalEnv is a Manager with the tracked tables, on a pool of one connection.
func signalEnv(t *testing.T, tenants ...string) *env {
	return newEnv(t, 1, tenant.Config{Resolver: byHeader, Migrations: signalMigrations}, tenants...)
}

func subscribe(t *testing.T, mgr *tenant.Manager, f changes.Filter) *changes.Subscription {
	t.Helper()
	sub, err := mgr.Subscribe(t.Context(), f)
	require.NoError(t, err)
	t.Cleanup(sub.Close)
	return sub
}

// next returns the subscription's next change, failing the test after 10 s.
func next(t *testing.T, sub *changes.Subscription) changes.Change {
	t.Helper()
	return receive(t, sub.C)
}

// attentive reads sub as its changes come, as a reader that keeps up does however
// long the test takes before it looks, and holds up to n of them for receive.
func attentive(sub *changes.Subscription, n int) <-chan changes.Change {
	held := make(chan changes.Change, n)
	go func() {
		defer close(held)
		for c := range sub.C {
			held <- c
		}
	}()
	return held
}

// receive returns the next change from ch, failing the test after 10 s.
func receive(t *testing.T, ch <-chan changes.Change) changes.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		require.True(t, ok, "the subscription was closed")
		return c
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no change within 10 s")
		return changes.Change{}
	}
}

// exec runs sql from outside the Manager (raw SQL, as another program would).
func (e *env) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := e.admin.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

// mark commits a change to plain... which is untracked: marks go in docs with a
// title, and are what a test waits for to know that nothing came before them.
func (e *env) mark(t *testing.T, schema, title string) changes.Change {
	t.Helper()
	var id int64
	require.NoError(t, e.admin.QueryRow(context.Background(), `INSERT INTO "`+schema+`".docs (title) VALUES ($1) RETURNING id`, title).Scan(&id))
	return changes.Change{Schema: schema, Table: "docs", Op: changes.Insert, Key: []string{fmt.Sprint(id)}}
}

// onegov's signal tests, ported: inserts fire after commit and carry the generated
// ids; nothing fires for work rolled back; one update fires one; a bulk update of two
// rows fires two; a delete carries the key.
func TestChangesAfterCommit(t *testing.T) {
	a := newTenantName("sig")
	e := signalEnv(t, a)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	var ids []int64
	err := e.mgr.Run(t.Context(), a, func(ctx context.Context) error {
		rows, err := tenantctx.Session(ctx).Query(ctx, "INSERT INTO docs (title) VALUES ('one'), ('two') RETURNING id")
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		// Committed meanwhile by another transaction: it arrives; the insert above,
		// not committed yet, does not.
		mark := e.mark(t, a, "while open")
		assert.Equal(t, mark, next(t, sub))
		return nil
	})
	require.NoError(t, err)
	require.Len(t, ids, 2)
	for _, id := range ids {
		assert.Equal(t, changes.Change{Schema: a, Table: "docs", Op: changes.Insert, Key: []string{fmt.Sprint(id)}}, next(t, sub))
	}

	rec := do(tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "INSERT INTO docs (title) VALUES ('rolled back')")
		require.NoError(t, err)
		http.Error(w, "failed", http.StatusInternalServerError)
	})), "POST", "/", nil, "X-Tenant", a)
	require.Equal(t, http.StatusInternalServerError, rec.Code)

	e.exec(t, `UPDATE "`+a+`".docs SET title = 'uno' WHERE id = $1`, ids[0])
	assert.Equal(t, changes.Change{Schema: a, Table: "docs", Op: changes.Update, Key: []string{fmt.Sprint(ids[0])}}, next(t, sub),
		"the update, and nothing for the rolled-back insert before it")
	e.exec(t, `UPDATE "`+a+`".docs SET title = title || '!' WHERE id = ANY($1)`, ids)
	for _, id := range ids {
		assert.Equal(t, changes.Change{Schema: a, Table: "docs", Op: changes.Update, Key: []string{fmt.Sprint(id)}}, next(t, sub))
	}
	e.exec(t, `DELETE FROM "`+a+`".docs WHERE id = $1`, ids[1])
	assert.Equal(t, changes.Change{Schema: a, Table: "docs", Op: changes.Delete, Key: []string{fmt.Sprint(ids[1])}}, next(t, sub))
	// The same row updated twice in one transaction fires twice (PostgreSQL would
	// deliver identical signals of a transaction once: each carries its number).
	e.exec(t, fmt.Sprintf(`UPDATE %[1]q.docs SET title = 'a' WHERE id = %[2]d; UPDATE %[1]q.docs SET title = 'b' WHERE id = %[2]d`, a, ids[0]))
	for range 2 {
		assert.Equal(t, changes.Change{Schema: a, Table: "docs", Op: changes.Update, Key: []string{fmt.Sprint(ids[0])}}, next(t, sub))
	}
	mark := e.mark(t, a, "end")
	assert.Equal(t, mark, next(t, sub), "one update fired one, the delete one: nothing more came before the mark")
}

// A subscriber to one schema never hears about another; one to all hears both; a
// table filter keeps to its table. Composite keys come in the key's column order;
// TRUNCATE comes as one change without a key; untracked tables say nothing.
func TestChangesFilters(t *testing.T) {
	foo, bar := newTenantName("foo"), newTenantName("bar")
	e := signalEnv(t, foo, bar)
	toBar := subscribe(t, e.mgr, changes.Filter{Schema: bar})
	toAll := subscribe(t, e.mgr, changes.Filter{})
	toPairs := subscribe(t, e.mgr, changes.Filter{Schema: foo, Table: "pairs"})

	e.exec(t, `INSERT INTO "`+foo+`".docs (title) VALUES ('foo''s')`)
	e.exec(t, `INSERT INTO "`+foo+`".plain VALUES (1)`)
	e.exec(t, `INSERT INTO "`+foo+`".pairs VALUES (7, 'x"y')`)
	e.exec(t, `TRUNCATE "`+foo+`".pairs`)
	barMark := e.mark(t, bar, "bar's")

	assert.Equal(t, barMark, next(t, toBar), "nothing of foo came first")
	var seen []changes.Change
	for len(seen) < 4 {
		if c := next(t, toAll); c.Schema == foo || c.Schema == bar { // other tests' schemas share the database
			seen = append(seen, c)
		}
	}
	assert.Equal(t, []changes.Change{
		{Schema: foo, Table: "docs", Op: changes.Insert, Key: []string{"1"}},
		{Schema: foo, Table: "pairs", Op: changes.Insert, Key: []string{`x"y`, "7"}},
		{Schema: foo, Table: "pairs", Op: changes.Truncate},
		barMark,
	}, seen)
	assert.Equal(t, changes.Change{Schema: foo, Table: "pairs", Op: changes.Insert, Key: []string{`x"y`, "7"}}, next(t, toPairs))
	assert.Equal(t, changes.Truncate, next(t, toPairs).Op)
}

// Changes made elsewhere arrive too: raw SQL on another connection, and another
// replica of the app (a second Manager) through its own lifecycle.
func TestChangesFromAnotherReplica(t *testing.T) {
	a := newTenantName("rep")
	e := signalEnv(t, a)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})
	replica := signalEnv(t)
	err := replica.mgr.Run(t.Context(), a, func(ctx context.Context) error {
		_, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO docs (id, title) VALUES (41, 'from the replica')")
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, changes.Change{Schema: a, Table: "docs", Op: changes.Insert, Key: []string{"41"}}, next(t, sub))
}

// A statement whose keys exceed one signal's payload (PostgreSQL refuses a NOTIFY over
// 8000 bytes, failing the transaction) is split: every key arrives, in order, and no
// payload reaches the limit.
func TestChangesLargeStatement(t *testing.T) {
	a := newTenantName("big")
	e := signalEnv(t, a)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})
	raw := listen(t)

	const rows = 3000
	e.exec(t, `INSERT INTO "`+a+`".big SELECT lpad(g::text, 100, 'k') FROM generate_series(1, $1) g`, rows)
	for i := 1; i <= rows; i++ {
		c := next(t, sub)
		require.False(t, c.Missed)
		require.Equal(t, strings.Repeat("k", 100-len(fmt.Sprint(i)))+fmt.Sprint(i), c.Key[0], "row %d", i)
	}

	var signals, keys, largest int
	for keys < rows {
		n := raw.wait(t)
		if strings.Contains(n.Payload, `"s":"`+a+`"`) {
			signals++
			keys += strings.Count(n.Payload, `["`)
			largest = max(largest, len(n.Payload))
		}
	}
	assert.Equal(t, rows, keys)
	assert.Less(t, largest, 8000)
	assert.Greater(t, largest, 7000, "signals are filled")
	assert.Greater(t, signals, rows*105/8000, "keys of 105 bytes, with their comma, split over signals")
}

// rawListener is a connection listening for the signals themselves.
type rawListener struct{ conn *pgx.Conn }

func listen(t *testing.T) rawListener {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testdb.URL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(t.Context(), "LISTEN tenant_changes")
	require.NoError(t, err)
	return rawListener{conn}
}

func (l rawListener) wait(t *testing.T) *pgconn.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	n, err := l.conn.WaitForNotification(ctx)
	require.NoError(t, err)
	return n
}
