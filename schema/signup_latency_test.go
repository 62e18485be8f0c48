package schema_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The sign-up latency measurement (BENCHMARKS.md, "Fast sign-up") runs with
// -signup.samples=100 -signup.tables=20; make test runs a small version, to keep it
// working.
var (
	signupSamples = flag.Int("signup.samples", 3, "sign-ups timed per path by TestStock/SignupLatency")
	signupTables  = flag.Int("signup.tables", 5, "tables in the migrations of TestStock/SignupLatency")
)

// tablesMigrations is an application's schema of n tables in files of five: each
// table has an identity key, a foreign key to the one before, a unique and a check
// constraint, jsonb with a default, a timestamp and two indexes.
func tablesMigrations(n int) fstest.MapFS {
	out := fstest.MapFS{}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `CREATE TABLE t%02[1]d (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	parent_id bigint %[2]s,
	code text NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 64),
	amount numeric(12, 2) NOT NULL DEFAULT 0 CHECK (amount >= 0),
	data jsonb NOT NULL DEFAULT '{}',
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX t%02[1]d_parent ON t%02[1]d (parent_id);
CREATE INDEX t%02[1]d_created ON t%02[1]d (created_at DESC);
`, i, map[bool]string{true: "", false: fmt.Sprintf("REFERENCES t%02d (id)", i-1)}[i == 0])
		if i%5 == 4 || i == n-1 {
			out[fmt.Sprintf("%03d_tables.sql", i/5+1)] = &fstest.MapFile{Data: []byte(b.String())}
			b.Reset()
		}
	}
	return out
}

// testSignupLatency times Create for new tenants: the slow path (migrations run), from
// stock with the refill stopped (the take alone), and from stock with the refill
// running (sign-ups back to back while spares are made beside them).
func testSignupLatency(t *testing.T, pool *pgxpool.Pool) {
	ctx := context.Background()
	n := *signupSamples
	migrations := tablesMigrations(*signupTables)
	timed := func(path string, signup func(name string) error) []time.Duration {
		d := make([]time.Duration, n)
		for i := range d {
			start := time.Now()
			require.NoError(t, signup(fmt.Sprintf("%s-%03d", path, i)))
			d[i] = time.Since(start)
		}
		slices.Sort(d)
		t.Logf("%-22s p50 %6.1f ms  p95 %6.1f ms  max %6.1f ms  (%d sign-ups, %d tables)", path,
			ms(d[(n-1)/2]), ms(d[(n*95+99)/100-1]), ms(d[n-1]), n, *signupTables)
		return d
	}

	slow := stockProvisioner(t, pool, migrations, 0)
	slowTimes := timed("slow", func(name string) error { return slow.Create(ctx, name) })

	alone := stockProvisioner(t, pool, migrations, n)
	require.NoError(t, alone.FillStock(ctx))
	alone.Close() // no refill: the take alone is timed
	stockTimes := timed("stock", func(name string) error { return alone.Create(ctx, name) })
	assert.Empty(t, spares(t, pool), "every sign-up took a spare")

	busy := stockProvisioner(t, pool, migrations, n)
	require.NoError(t, busy.FillStock(ctx))
	timed("stock-refilling", func(name string) error { return busy.Create(ctx, name) })
	busy.Close()

	assert.Less(t, stockTimes[(n-1)/2], slowTimes[(n-1)/2], "p50 from stock is below the slow path's")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
