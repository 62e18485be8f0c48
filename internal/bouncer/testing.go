package bouncer

import (
	"context"
	"errors"
	"os"
	"testing"
)

// ForTest is StartWith for a test, stopped when it ends. Without pgbouncer installed
// the test is skipped locally and fails in CI (CI set), which installs it; any other
// failure fails it.
func ForTest(t testing.TB, upstream string, o Options) *Bouncer {
	t.Helper()
	b, err := StartWith(context.Background(), upstream, o)
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must run the PgBouncer tests: apt-get install pgbouncer")
		}
		t.Skip("pgbouncer is not installed (apt-get install pgbouncer); the PgBouncer tests run where it is")
	}
	if err != nil {
		t.Fatalf("bouncer: %v", err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	return b
}
