package tenanttest_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenanttest"
)

// Names that are invalid, reserved or no tenant are refused before any transaction.
func TestBeginRefuses(t *testing.T) {
	mgr := newManager(t)
	for _, name := range []string{"Robert'); DROP TABLE notes;--", "pg_catalog", "public", "1abc", "tt_nosuch", ""} {
		t.Run(name, func(t *testing.T) {
			ctx, end, err := tenanttest.Begin(context.Background(), mgr, name)
			require.ErrorIs(t, err, tenant.ErrUnknownTenant)
			assert.Nil(t, ctx)
			assert.Nil(t, end)
		})
	}
}

// fatalTB records a helper's failure instead of failing the test that checks it.
type fatalTB struct {
	testing.TB
	mu       sync.Mutex
	failure  string
	cleanups []func()
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failure = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fatalTB) Context() context.Context { return context.Background() }

// failure runs fn with f as a test and returns how it failed ("" when it did not).
func (f *fatalTB) run(fn func(testing.TB)) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return f.failure
}

// The helpers fail the test for a name they refuse.
func TestHelpersFailOnBadNames(t *testing.T) {
	mgr := newManager(t)
	for _, tc := range []struct {
		name string
		fn   func(testing.TB)
		want string
	}{
		{"Tenant invalid", func(tb testing.TB) { tenanttest.Tenant(tb, mgr, "Bad Name") }, "invalid schema name"},
		{"Tenant reserved", func(tb testing.TB) { tenanttest.Tenant(tb, mgr, "extensions") }, "provision tenant"},
		{"Context unknown", func(tb testing.TB) { tenanttest.Context(tb, mgr, "tt_unknown") }, "unknown tenant"},
		{"Context invalid", func(tb testing.TB) { tenanttest.Context(tb, mgr, "pg_x") }, "unknown tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, (&fatalTB{TB: t}).run(tc.fn), tc.want)
		})
	}
}
