package tenant

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// benchTenant provisions tenant name with a counter table, on a pool of one
// connection, and returns the pool and the tenant's binding; both go when b ends.
func benchTenant(b *testing.B, name string) (*pgxpool.Pool, *binding) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testdb.DatabaseURL())
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	p, err := schema.NewProvisioner(pool, schema.Config{Migrations: fstest.MapFS{
		"001_counter.sql": {Data: []byte("CREATE TABLE counter (id int PRIMARY KEY, value int); INSERT INTO counter VALUES (1, 0)")},
	}})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Ensure(ctx, name); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Drop(ctx, name) })
	t, err := p.Lookup(ctx, name)
	if err != nil {
		b.Fatal(err)
	}
	return pool, newBinding(t, "SERIALIZABLE")
}

// BenchmarkTransactionShape measures, without HTTP, what a one-query transaction costs
// the session's way against the hand-written way, on a pool of one connection: the
// hand-written transaction (BEGIN with SET LOCAL search_path in one round trip, the
// prepared SELECT, COMMIT: three round trips); the session's (the prepared begin, the
// version lock and the SELECT in one round trip; the prepared check, COMMIT and reset
// in another), with the check answered apart from COMMIT (what requests other than GET
// send) and without; and the scripts the session sent before (three round trips).
func BenchmarkTransactionShape(b *testing.B) {
	ctx := context.Background()
	const name = "bench_shape"
	pool, bind := benchTenant(b, name)
	const query = "SELECT value FROM counter WHERE id = $1"

	handBegin := "BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL search_path TO " + schema.SearchPath(name)
	viaConn := func(begin string, end ...string) func() error {
		return func() error {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, begin); err != nil {
				return err
			}
			var v int
			if err := conn.QueryRow(ctx, bind.keyed(query), 1).Scan(&v); err != nil {
				return err
			}
			_, err = execEach(ctx, conn.Conn().PgConn(), end...)
			return err
		}
	}
	viaSession := func(apart bool) func() error {
		return func() error {
			s := &session{pool: pool, b: bind, checkApart: apart}
			var v int
			if err := s.QueryRow(ctx, query, 1).Scan(&v); err != nil {
				return err
			}
			return s.finish(ctx, true)
		}
	}
	shapes := []struct {
		name string
		run  func() error
	}{
		{"baseline", viaConn(handBegin, "COMMIT")},
		{"session", viaSession(false)},
		{"session-apart", viaSession(true)},
		{"scripts", viaConn(bind.begin, bind.commit)},
		{"scripts-apart", viaConn(bind.begin, bind.commitApart...)},
	}
	// Every iteration runs each shape once, so drift on a busy machine hits all alike;
	// each shape's mean is reported as a ratio to the baseline's.
	spent := make([]time.Duration, len(shapes))
	for b.Loop() {
		for i, sh := range shapes {
			start := time.Now()
			if err := sh.run(); err != nil {
				b.Fatal(err)
			}
			spent[i] += time.Since(start)
		}
	}
	for i, sh := range shapes {
		b.ReportMetric(float64(spent[i].Nanoseconds())/float64(b.N), "ns/"+sh.name)
		if i > 0 {
			b.ReportMetric(float64(spent[i])/float64(spent[0]), "x/"+sh.name)
		}
	}
	b.ReportMetric(0, "ns/op") // the metrics above are the result
}

// BenchmarkIsolationParts measures what each part of the binding adds to a one-query
// transaction, on one connection, every statement prepared as the session prepares
// them, each begin and end in one round trip: the bare transaction (BEGIN, the
// search_path, the SELECT; COMMIT), then with the LOCK of the version marker, with the
// binding check, with DISCARD SEQUENCES and the connection reset after COMMIT. Each
// shape runs once per iteration; each is reported as the time it adds to the bare one.
func BenchmarkIsolationParts(b *testing.B) {
	ctx := context.Background()
	pool, bind := benchTenant(b, "bench_parts")
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	pc := conn.Conn().PgConn()
	prepare := func(name, sql string) {
		if _, err := pc.Prepare(ctx, name, sql, nil); err != nil {
			b.Fatal(err)
		}
	}
	prepare(bind.beginName, bind.beginStmt)
	prepare(bindName, bindSQL)
	prepare(bind.checkName, checkSQL)
	for i, q := range endStatements {
		prepare(endNames[i], q)
	}
	// The SELECT is described in the tenant's path.
	if _, err := pc.Exec(ctx, bind.begin).ReadAll(); err != nil {
		b.Fatal(err)
	}
	prepare("bench_select", "SELECT value FROM counter WHERE id = $1")
	if _, err := pc.Exec(ctx, "COMMIT").ReadAll(); err != nil {
		b.Fatal(err)
	}
	const commit = 1
	run := func(lock, checked bool, end []int) {
		pl := pc.StartPipeline(ctx)
		pl.SendQueryPrepared(bind.beginName, nil, nil, nil)
		if lock {
			pl.SendQueryParams(bind.lock, nil, nil, nil, nil)
		}
		pl.SendQueryPrepared(bindName, bind.bindArgs, nil, nil)
		pl.SendQueryPrepared("bench_select", [][]byte{[]byte("1")}, nil, nil)
		if err := pl.Sync(); err != nil {
			b.Fatal(err)
		}
		if err := pl.Close(); err != nil {
			b.Fatal(err)
		}
		pl = pc.StartPipeline(ctx)
		if checked {
			pl.SendQueryPrepared(bind.checkName, [][]byte{bind.checkArg}, nil, nil)
		}
		for _, i := range end {
			pl.SendQueryPrepared(endNames[i], nil, nil, nil)
		}
		if err := pl.Sync(); err != nil {
			b.Fatal(err)
		}
		if err := pl.Close(); err != nil {
			b.Fatal(err)
		}
	}
	shapes := []struct {
		name          string
		lock, checked bool
		end           []int
	}{
		{"bare", false, false, []int{commit}},
		{"lock", true, false, []int{commit}},
		{"check", false, true, []int{commit}},
		{"reset", false, false, endCommit}, // DISCARD SEQUENCES, COMMIT, the reset
		{"all", true, true, endCommit},
	}
	spent := make([]time.Duration, len(shapes))
	for b.Loop() {
		for i, sh := range shapes {
			start := time.Now()
			run(sh.lock, sh.checked, sh.end)
			spent[i] += time.Since(start)
		}
	}
	for i, sh := range shapes {
		b.ReportMetric(float64(spent[i].Nanoseconds())/float64(b.N), "ns/"+sh.name)
		if i > 0 {
			b.ReportMetric(float64((spent[i]-spent[0]).Nanoseconds())/float64(b.N), "ns-added/"+sh.name)
		}
	}
	b.ReportMetric(0, "ns/op")
}
