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

// retries is the budget of one request's (or Run's) attempts, asked by each attempt
// whether another may follow once it ran: none may when Config.Attempts is reached,
// when the pause before it would end past the budget (the context's deadline, or
// RetryTimeout after the first attempt, whichever is sooner), or when the handler
// read more of the body than can be replayed.
type retries struct {
	m        *Manager
	body     *replayBody // Middleware's; nil for Run
	deadline time.Time
	attempt  int           // the attempt running, from 1
	wait     time.Duration // the pause before the next one, drawn by last
}

// start readies rs for attempts of which the first starts now.
func (rs *retries) start(ctx context.Context, m *Manager, body *replayBody, now time.Time) {
	rs.m, rs.body, rs.attempt = m, body, 1
	rs.deadline = now.Add(m.retryTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(rs.deadline) {
		rs.deadline = d
	}
}

// last reports whether no attempt may follow the one running.
func (rs *retries) last() bool {
	if rs.body != nil && !rs.body.replayable() {
		return true
	}
	if rs.m.attempts > 0 && rs.attempt >= rs.m.attempts {
		return true
	}
	rs.wait = backoff(rs.attempt)
	return time.Now().Add(rs.wait).After(rs.deadline)
}

// pause waits before the next attempt, which last allowed; it reports false when ctx
// ended first.
func (rs *retries) pause(ctx context.Context, name string) bool {
	if rs.m.log.Enabled(ctx, slog.LevelDebug) {
		rs.m.log.DebugContext(ctx, "tenant: transaction conflict, running again",
			slog.String("tenant", name), slog.Int("attempt", rs.attempt), slog.Duration("pause", rs.wait))
	}
	t := time.NewTimer(rs.wait)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return false
	}
	rs.attempt++
	return true
}

// backoff is the pause after the given attempt (1-based).
func backoff(attempt int) time.Duration {
	bound := retryCap
	if attempt < 20 {
		bound = min(retryBase<<(attempt-1), retryCap)
	}
	return rand.N(bound + 1)
}
