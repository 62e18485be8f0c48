package schema

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Backoff bounds for retried DDL races: exponential from retryBase, capped at retryCap.
const (
	retryBase = 20 * time.Millisecond
	retryCap  = time.Second
)

// raceCodes are the SQLSTATEs of concurrent DDL on the same objects: another session
// created the schema or extension between our check and our CREATE (unique_violation,
// duplicate_schema, duplicate_object), or a serialization failure or deadlock.
var raceCodes = map[string]bool{
	"23505": true, // unique_violation (pg_namespace / pg_extension catalogs)
	"42P06": true, // duplicate_schema
	"42710": true, // duplicate_object
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// isRace reports whether err is a DDL race worth another attempt.
func isRace(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && raceCodes[pgErr.Code]
}

// backoff is the pause after the given failed attempt (1-based): exponential, capped,
// with jitter in [d/2, d] so processes that collided do not collide again in step.
func backoff(attempt int) time.Duration {
	d := retryCap
	if attempt < 16 {
		d = min(retryBase<<(attempt-1), retryCap)
	}
	return d/2 + rand.N(d/2+1)
}

// retry runs fn until it succeeds, fails with something other than a race, or
// p.attempts attempts are spent; then it returns the last error.
func (p *Provisioner) retry(ctx context.Context, what, name string, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !isRace(err) {
			return err
		}
		if attempt >= p.attempts {
			return fmt.Errorf("%s: gave up after %d attempts: %w", what, attempt, err)
		}
		wait := backoff(attempt)
		p.log.DebugContext(ctx, "tenant schema: DDL race, retrying", slog.String("tenant", name),
			slog.String("step", what), slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		}
	}
}
