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

// BenchmarkTransactionShape measures, without HTTP, what a one-query transaction costs
// the session's way against the hand-written way, on a pool of one connection: the
// hand-written transaction (BEGIN with SET LOCAL search_path in one round trip, the
// prepared SELECT, COMMIT: three round trips); the session's (the prepared begin, the
// version lock and the SELECT in one round trip; the prepared check, COMMIT and reset
// in another), with the check answered apart from COMMIT (what requests other than GET
// send) and without; and the scripts the session sent before (three round trips).
func BenchmarkTransactionShape(b *testing.B) {
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
	defer pool.Close()
	p, err := schema.NewProvisioner(pool, schema.Config{Migrations: fstest.MapFS{
		"001_counter.sql": {Data: []byte("CREATE TABLE counter (id int PRIMARY KEY, value int); INSERT INTO counter VALUES (1, 0)")},
	}})
	if err != nil {
		b.Fatal(err)
	}
	const name = "bench_shape"
	if err := p.Ensure(ctx, name); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Drop(ctx, name) }()
	t, err := p.Lookup(ctx, name)
	if err != nil {
		b.Fatal(err)
	}
	bind := newBinding(t, "SERIALIZABLE")
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
