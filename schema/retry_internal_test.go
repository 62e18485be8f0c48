package schema

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
)

func TestBackoff(t *testing.T) {
	prevMax := time.Duration(0)
	for attempt := 1; attempt <= 40; attempt++ {
		d := backoff(attempt)
		want := min(retryBase<<min(attempt-1, 15), retryCap)
		assert.GreaterOrEqual(t, d, want/2, "attempt %d", attempt)
		assert.LessOrEqual(t, d, want, "attempt %d", attempt)
		assert.GreaterOrEqual(t, want, prevMax)
		prevMax = want
	}
}

func TestIsRace(t *testing.T) {
	for code, want := range map[string]bool{"23505": true, "42P06": true, "40001": true, "40P01": true, "42710": true,
		"42501": false, "42601": false} {
		err := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code})
		assert.Equal(t, want, isRace(err), code)
	}
	assert.False(t, isRace(errors.New("plain")))
}

// retry gives up after the configured attempts and returns the last error.
func TestRetryBounded(t *testing.T) {
	p := &Provisioner{attempts: 3, log: slog.New(slog.DiscardHandler)}
	calls := 0
	err := p.retry(context.Background(), "test", "x", func() error {
		calls++
		return &pgconn.PgError{Code: "40001", Message: fmt.Sprint("attempt ", calls)}
	})
	assert.Equal(t, 3, calls)
	assert.ErrorContains(t, err, "attempt 3")
	assert.ErrorContains(t, err, "gave up after 3 attempts")

	calls = 0
	err = p.retry(context.Background(), "test", "x", func() error { calls++; return &pgconn.PgError{Code: "42601"} })
	assert.Equal(t, 1, calls, "other errors are not retried")
	assert.Error(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = p.retry(ctx, "test", "x", func() error { return &pgconn.PgError{Code: "40001"} })
	assert.ErrorIs(t, err, context.Canceled)
}

// A zero Attempts or LockTimeout means the documented default; a set one is kept.
func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		attempts    int
		lockTimeout time.Duration
	}{
		{"zero", Config{}, DefaultAttempts, DefaultLockTimeout},
		{"negative", Config{Attempts: -1, LockTimeout: -time.Second}, DefaultAttempts, DefaultLockTimeout},
		{"set", Config{Attempts: 1, LockTimeout: time.Second}, 1, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewProvisioner(nil, tt.cfg)
			assert.NoError(t, err)
			assert.Equal(t, tt.attempts, p.attempts)
			assert.Equal(t, tt.lockTimeout, p.lockTimeout)
		})
	}
}
