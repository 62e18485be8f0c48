package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
)

// logWriter passes progress lines to the test log.
type logWriter struct{ t *testing.T }

// Write logs p.
func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestSmoke runs the harness end to end with tiny settings: it builds benchserver,
// provisions two tenants in the test database, starts the baseline and the library's
// server, once straight to PostgreSQL and once through the delaying proxy, and checks
// that the figures are sane. No timing ratio is asserted: only that every server
// answered, and that the proxy really delays (a request makes at least one round trip,
// so its p50 is at least twice the delay of each direction).
func TestSmoke(t *testing.T) {
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the smoke test builds the servers with the go command")
	const delay = time.Millisecond
	cfg := config{
		goTool: goTool,
		// A race build of the servers reuses the packages make test already compiled
		// with -race; a plain one compiles them all again (40 s on a cold cache).
		race:      true,
		dsn:       testdb.URL(t),
		servers:   []kind{kinds[0], kinds[3]}, // handwritten, library
		tenants:   []int{2},
		isolation: []string{"serializable"},
		delays:    []time.Duration{0, delay},
		clients:   4,
		pool:      4,
		documents: 3,
		duration:  300 * time.Millisecond,
		warmup:    100 * time.Millisecond,
		rounds:    1,
	}
	require.NoError(t, cfg.check())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg, logWriter{t})
	require.NoError(t, err)

	require.Len(t, res.cells, 2)
	for _, c := range res.cells {
		rows := c.summarize()
		require.Len(t, rows, 2)
		for _, s := range rows {
			assert.Positive(t, s.throughput, "%s, delay %v", s.kind.name, c.delay)
			assert.Zero(t, s.failed, "%s, delay %v", s.kind.name, c.delay)
			assert.Positive(t, s.p50)
			assert.GreaterOrEqual(t, s.p99, s.p50)
			if c.delay > 0 {
				assert.GreaterOrEqual(t, s.p50, 2*c.delay, "%s: the proxy must delay each round trip", s.kind.name)
			}
		}
		assert.InDelta(t, 1, rows[0].ratio, 1e-9, "the baseline against itself")
	}

	var out strings.Builder
	writeReport(&out, cfg, res)
	report := out.String()
	t.Log("\n" + report)
	assert.Contains(t, report, "    go run ./internal/cmd/httpbench -servers handwritten,library -tenants 2 ")
	assert.Contains(t, report, "#### SERIALIZABLE, 2 tenants (throughput; higher is better)")
	assert.Contains(t, report, "#### SERIALIZABLE, 2 tenants, 1ms each way")
	assert.Contains(t, report, "| server | 2 tenants, SERIALIZABLE: requests/s | 2 tenants, SERIALIZABLE, 1ms delay: p50 |\n")
	assert.Contains(t, report, "| hand-written (baseline) | 1.00× | 1.00× |\n")
	assert.Equal(t, 3*(2+2), strings.Count(report, "\n|"), "three tables of a header, a rule and two rows")
}
