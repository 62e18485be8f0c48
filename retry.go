package tenant

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// DefaultRetryTimeout is Config.RetryTimeout's default.
const DefaultRetryTimeout = 5 * time.Second

// Backoff between attempts: exponential from retryBase, capped at retryCap, with full
// jitter (a pause drawn at random up to that bound), so transactions that collided do
// not collide again in step. Measured in BENCHMARKS.md ("Retries under contention").
const (
	retryBase = time.Millisecond
	retryCap  = 25 * time.Millisecond
)

// repeat calls once until it asks for no retry, pausing between calls. A call learns
// whether another may follow from last(), which it asks once its attempt ran: no
// other may when Config.Attempts is reached, or when the pause before it would end
// past the budget (the context's deadline, or RetryTimeout after the first call,
// whichever is sooner). repeat reports false when ctx ended during a pause.
func (m *Manager) repeat(ctx context.Context, name string, once func(last func() bool) (retry bool)) bool {
	deadline := time.Now().Add(m.retryTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for attempt := 1; ; attempt++ {
		var wait time.Duration
		last := func() bool {
			if m.attempts > 0 && attempt >= m.attempts {
				return true
			}
			wait = backoff(attempt)
			return time.Now().Add(wait).After(deadline)
		}
		if !once(last) {
			return true
		}
		m.log.DebugContext(ctx, "tenant: transaction conflict, running again",
			slog.String("tenant", name), slog.Int("attempt", attempt), slog.Duration("pause", wait))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}

// backoff is the pause after the given attempt (1-based).
func backoff(attempt int) time.Duration {
	bound := retryCap
	if attempt < 20 {
		bound = min(retryBase<<(attempt-1), retryCap)
	}
	return rand.N(bound + 1)
}
