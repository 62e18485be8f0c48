package tenant_test

// Red-team tests of change signals (schema/changes.go, package changes). Tests marked
// "BUG:" fail against the current code and show a defect; the others pass and pin a
// guarantee of docs/changes.md.

import (
	"context"
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/changes"
	"github.com/tenantkit/tenant/tenantctx"
)

// redteamSignalMigrations track tables of many shapes. docs is there for e.mark.
var redteamSignalMigrations = fstest.MapFS{
	"001_tables.sql": {Data: []byte(`
		CREATE TABLE docs (id bigserial PRIMARY KEY, title text NOT NULL);
		CREATE TABLE parent (id int PRIMARY KEY);
		CREATE TABLE child (pid int NOT NULL REFERENCES parent ON DELETE CASCADE, n int, PRIMARY KEY (pid, n));
		CREATE TABLE loose (id int PRIMARY KEY, pid int REFERENCES parent ON DELETE SET NULL);
		CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
		CREATE TABLE gen (a int NOT NULL, b int GENERATED ALWAYS AS (a * 10) STORED PRIMARY KEY);
		CREATE TABLE events (region text, id int, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
		CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
		CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
		CREATE TABLE weird ("Key ""q""" text, "ünï" text, PRIMARY KEY ("Key ""q""", "ünï"));
		CREATE TABLE big (k text PRIMARY KEY);
		CREATE TABLE stamps (at timestamptz PRIMARY KEY);
		CREATE TABLE rekey (id int PRIMARY KEY, code text NOT NULL);
		SELECT tenant_registry.track_changes(t::regclass)
		  FROM unnest(ARRAY['docs', 'parent', 'child', 'loose', 'ident', 'gen', 'events', 'weird', 'big', 'stamps', 'rekey']) t;`)},
}

func redteamSignalEnv(t *testing.T, tenants ...string) *env {
	return newEnv(t, 1, tenant.Config{Resolver: byHeader, Migrations: redteamSignalMigrations}, tenants...)
}

// untilMark commits a mark in schema's docs and returns every change sub received
// before it: exactly what the statements before the mark signalled.
func untilMark(t *testing.T, e *env, sub *changes.Subscription, schema string) []changes.Change {
	t.Helper()
	mark := e.mark(t, schema, "mark")
	var got []changes.Change
	for {
		c := next(t, sub)
		if c.Table == mark.Table && c.Op == mark.Op && assert.ObjectsAreEqual(c.Key, mark.Key) {
			return got
		}
		got = append(got, c)
	}
}

func ch(schema, table string, op changes.Op, key ...string) changes.Change {
	return changes.Change{Schema: schema, Table: table, Op: op, Key: key}
}

// A savepoint rolled back inside a transaction that commits signals nothing for its
// rows; the rest of the transaction is delivered. Through the session and through SQL.
func TestRedteamChangesSavepointRollback(t *testing.T) {
	a := newTenantName("rtsp")
	e := redteamSignalEnv(t, a)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	err := e.mgr.Run(t.Context(), a, func(ctx context.Context) error {
		db := tenantctx.Session(ctx)
		if _, err := db.Exec(ctx, "INSERT INTO parent VALUES ($1)", 1); err != nil {
			return err
		}
		sp, err := db.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := sp.Exec(ctx, "INSERT INTO parent VALUES ($1)", 2); err != nil {
			return err
		}
		if err := sp.Rollback(ctx); err != nil {
			return err
		}
		_, err = db.Exec(ctx, "INSERT INTO parent VALUES ($1)", 3)
		return err
	})
	require.NoError(t, err)
	e.exec(t, fmt.Sprintf(`BEGIN; INSERT INTO %[1]q.parent VALUES (4); SAVEPOINT s;
		INSERT INTO %[1]q.parent VALUES (5); SAVEPOINT inner_s; INSERT INTO %[1]q.parent VALUES (6); RELEASE inner_s;
		ROLLBACK TO s; INSERT INTO %[1]q.parent VALUES (7); COMMIT`, a))
	assert.Equal(t, []changes.Change{
		ch(a, "parent", changes.Insert, "1"),
		ch(a, "parent", changes.Insert, "3"),
		ch(a, "parent", changes.Insert, "4"),
		ch(a, "parent", changes.Insert, "7"),
	}, untilMark(t, e, sub, a))
}

// Found by red-teaming, and fixed: PostgreSQL folds identical NOTIFY payloads of one transaction into one, so a
// row inserted, deleted and inserted again in one transaction reports insert, delete:
// a subscriber (a cache, a search index) concludes the row is gone while it exists.
// The same with TRUNCATE, INSERT, TRUNCATE: the last truncate is lost and the subscriber
// believes the row is there. docs/changes.md presents the folding as harmless
// ("two identical statements on the same rows ... report once"), but it also drops a
// later signal whose meaning differs from its duplicate's because of what came between.
// Fix: make every signal's payload unique within its transaction (e.g. a statement
// sequence number: a counter in a transaction-local setting, set_config('tenant.sig',
// n+1, true), or clock_timestamp()/statement_timestamp() plus a counter, carried in the
// payload and ignored by parse).
func TestRedteamChangesReinsertInOneTransaction(t *testing.T) {
	a := newTenantName("rtre")
	e := redteamSignalEnv(t, a)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	e.exec(t, fmt.Sprintf(`INSERT INTO %[1]q.parent VALUES (1); DELETE FROM %[1]q.parent WHERE id = 1; INSERT INTO %[1]q.parent VALUES (1)`, a))
	assert.Equal(t, []changes.Change{
		ch(a, "parent", changes.Insert, "1"),
		ch(a, "parent", changes.Delete, "1"),
		ch(a, "parent", changes.Insert, "1"),
	}, untilMark(t, e, sub, a), "the row exists: the last change must say so")
	var n int
	require.NoError(t, e.admin.QueryRow(t.Context(), `SELECT count(*) FROM "`+a+`".parent`).Scan(&n))
	require.Equal(t, 1, n)

	e.exec(t, fmt.Sprintf(`TRUNCATE %[1]q.rekey; INSERT INTO %[1]q.rekey VALUES (1, 'x'); TRUNCATE %[1]q.rekey`, a))
	assert.Equal(t, []changes.Change{
		{Schema: a, Table: "rekey", Op: changes.Truncate},
		ch(a, "rekey", changes.Insert, "1"),
		{Schema: a, Table: "rekey", Op: changes.Truncate},
	}, untilMark(t, e, sub, a), "the table is empty: the last change must say so")
}

// INSERT ... ON CONFLICT DO UPDATE fires the insert and the update statement triggers:
// each row is reported once, as an insert when it was inserted and as an update when
// it conflicted; DO NOTHING reports only the rows inserted.
func TestRedteamChangesUpsert(t *testing.T) {
	a := newTenantName("rtup")
	e := redteamSignalEnv(t, a)
	e.exec(t, `INSERT INTO "`+a+`".rekey VALUES (1, 'a'), (2, 'b')`)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	e.exec(t, `INSERT INTO "`+a+`".rekey VALUES (1, 'x'), (2, 'x'), (3, 'x'), (4, 'x')
		ON CONFLICT (id) DO UPDATE SET code = excluded.code`)
	assert.ElementsMatch(t, []changes.Change{
		ch(a, "rekey", changes.Update, "1"),
		ch(a, "rekey", changes.Update, "2"),
		ch(a, "rekey", changes.Insert, "3"),
		ch(a, "rekey", changes.Insert, "4"),
	}, untilMark(t, e, sub, a))

	e.exec(t, `INSERT INTO "`+a+`".rekey VALUES (1, 'y'), (5, 'y') ON CONFLICT DO NOTHING`)
	assert.Equal(t, []changes.Change{ch(a, "rekey", changes.Insert, "5")}, untilMark(t, e, sub, a))

	// An upsert whose update does not happen (WHERE false) reports nothing for that row.
	e.exec(t, `INSERT INTO "`+a+`".rekey VALUES (1, 'z') ON CONFLICT (id) DO UPDATE SET code = excluded.code WHERE false`)
	assert.Empty(t, untilMark(t, e, sub, a))
}

// MERGE (PostgreSQL 15) fires the statement triggers of its actions with transition
// tables: each row is reported once, with the action that touched it.
func TestRedteamChangesMerge(t *testing.T) {
	a := newTenantName("rtmg")
	e := redteamSignalEnv(t, a)
	e.exec(t, `INSERT INTO "`+a+`".rekey VALUES (1, 'a'), (2, 'b'), (3, 'c')`)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	e.exec(t, `MERGE INTO "`+a+`".rekey r USING (VALUES (1, 'm'), (3, 'm'), (9, 'm')) s(id, code) ON r.id = s.id
		WHEN MATCHED AND r.id = 1 THEN UPDATE SET code = s.code
		WHEN MATCHED THEN DELETE
		WHEN NOT MATCHED THEN INSERT (id, code) VALUES (s.id, s.code)`)
	assert.ElementsMatch(t, []changes.Change{
		ch(a, "rekey", changes.Update, "1"),
		ch(a, "rekey", changes.Delete, "3"),
		ch(a, "rekey", changes.Insert, "9"),
	}, untilMark(t, e, sub, a))
}

// UPDATE ... FROM with a row matched twice updates it once and reports it once.
func TestRedteamChangesUpdateFrom(t *testing.T) {
	a := newTenantName("rtuf")
	e := redteamSignalEnv(t, a)
	e.exec(t, `INSERT INTO "`+a+`".rekey VALUES (1, 'a'), (2, 'b'), (3, 'c')`)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	e.exec(t, `UPDATE "`+a+`".rekey r SET code = s.code FROM (VALUES (1, 'x'), (1, 'y'), (2, 'z')) s(id, code) WHERE r.id = s.id`)
	assert.ElementsMatch(t, []changes.Change{
		ch(a, "rekey", changes.Update, "1"),
		ch(a, "rekey", changes.Update, "2"),
	}, untilMark(t, e, sub, a))
}

// An update that changes the key reports the new key only (as documented): the old
// key is never reported, so a subscriber keyed by it keeps a stale entry.
func TestRedteamChangesKeyUpdateReportsNewKeyOnly(t *testing.T) {
	a := newTenantName("rtku")
	e := redteamSignalEnv(t, a)
	e.exec(t, `INSERT INTO "`+a+`".rekey VALUES (1, 'a'), (2, 'b')`)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})
	e.exec(t, `UPDATE "`+a+`".rekey SET id = id + 10`)
	assert.ElementsMatch(t, []changes.Change{
		ch(a, "rekey", changes.Update, "11"),
		ch(a, "rekey", changes.Update, "12"),
	}, untilMark(t, e, sub, a))
}

// A DELETE that cascades (ON DELETE CASCADE, ON DELETE SET NULL) into other tracked
// tables reports each affected row of each table once; TRUNCATE ... CASCADE reports
// each table truncated.
func TestRedteamChangesCascade(t *testing.T) {
	a := newTenantName("rtcas")
	e := redteamSignalEnv(t, a)
	e.exec(t, fmt.Sprintf(`INSERT INTO %[1]q.parent VALUES (1), (2), (3);
		INSERT INTO %[1]q.child VALUES (1, 1), (1, 2), (2, 1), (3, 1);
		INSERT INTO %[1]q.loose VALUES (10, 1), (11, 2), (12, 3)`, a))
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	e.exec(t, `DELETE FROM "`+a+`".parent WHERE id IN (1, 2)`)
	assert.ElementsMatch(t, []changes.Change{
		ch(a, "parent", changes.Delete, "1"),
		ch(a, "parent", changes.Delete, "2"),
		ch(a, "child", changes.Delete, "1", "1"),
		ch(a, "child", changes.Delete, "1", "2"),
		ch(a, "child", changes.Delete, "2", "1"),
		ch(a, "loose", changes.Update, "10"),
		ch(a, "loose", changes.Update, "11"),
	}, untilMark(t, e, sub, a))

	e.exec(t, `TRUNCATE "`+a+`".parent CASCADE`) // child and loose go with it
	assert.ElementsMatch(t, []changes.Change{
		{Schema: a, Table: "parent", Op: changes.Truncate},
		{Schema: a, Table: "child", Op: changes.Truncate},
		{Schema: a, Table: "loose", Op: changes.Truncate},
	}, untilMark(t, e, sub, a))
}

// COPY FROM into a tracked table reports every row, from the session's CopyFrom and
// from a plain connection.
func TestRedteamChangesCopyFrom(t *testing.T) {
	a := newTenantName("rtcp")
	e := redteamSignalEnv(t, a)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	err := e.mgr.Run(t.Context(), a, func(ctx context.Context) error {
		_, err := tenantctx.Session(ctx).CopyFrom(ctx, pgx.Identifier{"rekey"}, []string{"id", "code"},
			pgx.CopyFromRows([][]any{{1, "a"}, {2, "b"}}))
		return err
	})
	require.NoError(t, err)
	_, err = e.admin.CopyFrom(t.Context(), pgx.Identifier{a, "rekey"}, []string{"id", "code"},
		pgx.CopyFromRows([][]any{{3, "c"}, {4, "d"}, {5, "e"}}))
	require.NoError(t, err)
	assert.Equal(t, []changes.Change{
		ch(a, "rekey", changes.Insert, "1"),
		ch(a, "rekey", changes.Insert, "2"),
		ch(a, "rekey", changes.Insert, "3"),
		ch(a, "rekey", changes.Insert, "4"),
		ch(a, "rekey", changes.Insert, "5"),
	}, untilMark(t, e, sub, a))
}

// Identity and generated (stored) keys are reported with their generated values.
func TestRedteamChangesGeneratedKeys(t *testing.T) {
	a := newTenantName("rtgen")
	e := redteamSignalEnv(t, a)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	e.exec(t, `INSERT INTO "`+a+`".ident (v) VALUES ('x'), ('y')`)
	e.exec(t, `INSERT INTO "`+a+`".gen (a) VALUES (3)`)
	e.exec(t, `UPDATE "`+a+`".gen SET a = 4`)
	assert.Equal(t, []changes.Change{
		ch(a, "ident", changes.Insert, "1"),
		ch(a, "ident", changes.Insert, "2"),
		ch(a, "gen", changes.Insert, "30"),
		ch(a, "gen", changes.Update, "40"),
	}, untilMark(t, e, sub, a))
}

// Found by red-teaming, and fixed: a partitioned table is tracked with statement triggers on the parent only, and
// PostgreSQL fires a statement trigger only on the table the statement names: rows
// written into a partition directly (INSERT INTO events_us, DELETE FROM events_eu: as
// routine as writing through the parent, e.g. by a loader or a retention job) are
// never reported, though they are rows of the tracked table. docs/changes.md says
// "nothing is missed: every row inserted, updated or deleted in a tracked table".
// Fix: track_changes on a partitioned table should also put the triggers on each
// partition (and on partitions attached later, or refuse/document), reporting under
// the parent's name (pg_partition_root(TG_RELID)); or document that partitions must be
// written through the parent.
func TestRedteamChangesPartitionedTable(t *testing.T) {
	a := newTenantName("rtpart")
	e := redteamSignalEnv(t, a)
	sub := subscribe(t, e.mgr, changes.Filter{Schema: a})

	e.exec(t, `INSERT INTO "`+a+`".events VALUES ('eu', 1)`)
	e.exec(t, `UPDATE "`+a+`".events SET region = 'us' WHERE id = 1`) // moves it to events_us
	e.exec(t, `INSERT INTO "`+a+`".events_us VALUES ('us', 2)`)
	e.exec(t, `DELETE FROM "`+a+`".events_us WHERE id = 1`)
	assert.Equal(t, []changes.Change{
		ch(a, "events", changes.Insert, "eu", "1"),
		ch(a, "events", changes.Update, "us", "1"),
		ch(a, "events", changes.Insert, "us", "2"),
		ch(a, "events", changes.Delete, "us", "1"),
	}, untilMark(t, e, sub, a))
}
