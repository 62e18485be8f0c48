package tenant

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// BenchmarkTransactionShape measures what binding a transaction to its tenant costs,
// without HTTP or the session: on one connection, one prepared SELECT in a transaction
// begun and ended the hand-written way (BEGIN with SET LOCAL search_path in one round
// trip, COMMIT) against the binding's way (BEGIN, the version lock, both SET LOCALs;
// the check, COMMIT and the connection reset). Both send three round trips; the
// difference is server and protocol work. The parts (begin, check, reset) show where
// it goes.
func BenchmarkTransactionShape(b *testing.B) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testdb.DatabaseURL())
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
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	const query = "SELECT value FROM counter WHERE id = $1"

	handBegin := "BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL search_path TO " + schema.SearchPath(name)
	shapes := []struct {
		name, begin string
		end         []string
	}{
		{"baseline", handBegin, []string{"COMMIT"}},
		{"bound", bind.begin, []string{bind.commit}},
		{"bound-apart", bind.begin, bind.commitApart},                                                      // the check answered before COMMIT begins
		{"begin", bind.begin, []string{"COMMIT"}},                                                          // the version lock and markers only
		{"check", bind.begin, []string{bind.check + "COMMIT"}},                                             // ... and the binding check
		{"reset", handBegin, []string{"COMMIT; " + resetSQL}},                                              // the connection reset alone
		{"reset-no-unlock", handBegin, []string{"COMMIT; " + resetSQL[:strings.LastIndex(resetSQL, ";")]}}, // without its SELECT
	}
	// Every iteration runs each shape once, so drift on a busy machine hits all alike;
	// each shape's mean is reported as a ratio to the baseline's.
	spent := make([]time.Duration, len(shapes))
	for b.Loop() {
		for i, sh := range shapes {
			start := time.Now()
			if _, err := conn.Exec(ctx, sh.begin); err != nil {
				b.Fatal(err)
			}
			var v int
			if err := conn.QueryRow(ctx, bind.keyed(query), 1).Scan(&v); err != nil {
				b.Fatal(err)
			}
			if _, err := execEach(ctx, conn.Conn().PgConn(), sh.end...); err != nil {
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
