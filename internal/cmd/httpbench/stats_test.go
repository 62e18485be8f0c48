package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPercentileAndMedian(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	sorted := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	assert.Equal(t, 5*time.Millisecond, percentile(sorted, 50))
	assert.Equal(t, 10*time.Millisecond, percentile(sorted, 99))
	assert.Equal(t, time.Millisecond, percentile(sorted, 1))
	assert.Zero(t, percentile(nil, 50))
	assert.Equal(t, 2.0, median([]float64{3, 1, 2}))
	assert.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
	assert.Equal(t, 3*time.Millisecond, medianDuration(ms(5, 1, 3)))
}

// Ratios are medians of per-round ratios, not ratios of medians.
func TestSummarize(t *testing.T) {
	round := func(base, other float64, baseP50, otherP50 time.Duration) []sample {
		return []sample{
			{requests: int(base), elapsed: time.Second, p50: baseP50, p99: 2 * baseP50},
			{requests: int(other), elapsed: time.Second, p50: otherP50, p99: 2 * otherP50, failed: 1},
		}
	}
	c := cell{servers: []kind{kinds[0], kinds[3]}, rounds: [][]sample{
		round(100, 80, 10*time.Millisecond, 12*time.Millisecond),
		round(200, 100, 5*time.Millisecond, 10*time.Millisecond),
		round(150, 135, 8*time.Millisecond, 8*time.Millisecond),
	}}
	rows := c.summarize()
	assert.Equal(t, 150.0, rows[0].throughput)
	assert.Equal(t, 1.0, rows[0].ratio)
	assert.Equal(t, 100.0, rows[1].throughput)
	assert.InDelta(t, 0.8, rows[1].ratio, 1e-9) // 0.8, 0.5, 0.9
	assert.InDelta(t, 1.2, rows[1].p50Ratio, 1e-9)
	assert.Equal(t, 10*time.Millisecond, rows[1].p50)
	assert.Equal(t, 3, rows[1].failed)

	c.servers = []kind{kinds[3], kinds[2]} // no baseline
	for _, r := range c.summarize() {
		assert.False(t, r.baselineSet)
		assert.Equal(t, "n/a", formatRatio(r.ratio, r.baselineSet))
	}
}

func TestFormats(t *testing.T) {
	assert.Equal(t, "1,234,568", formatCount(1234567.8))
	assert.Equal(t, "999", formatCount(999))
	assert.Equal(t, "1.23×", formatRatio(1.234, true))
	assert.Equal(t, "0.50 ms", formatMillis(500*time.Microsecond))
}
