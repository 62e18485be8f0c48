package main

import (
	"slices"
	"time"
)

// sample is what one server did in one round (or warm-up) of load.
type sample struct {
	requests int           // answered 200
	failed   int           // answered otherwise, or not at all
	elapsed  time.Duration // from the first request to the last answer
	p50, p99 time.Duration // latency of the requests answered 200
	failure  string        // the first failure, for the error message
	cpu      cpuTimes      // spent meanwhile by the server and its backends
	cpuKnown bool
}

// throughput is requests answered 200 per second.
func (s sample) throughput() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.requests) / s.elapsed.Seconds()
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted, or 0
// when it is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// median returns the median of xs (the mean of the middle two for an even count), or
// 0 when it is empty. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianDuration is median for durations.
func medianDuration(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}
