package app_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/example-app/app"
)

// Seed creates each demo tenant with its documents once; run again (the next start)
// it leaves them as they are.
func TestSeed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, app.Config{})
	for _, name := range app.DemoTenants {
		t.Cleanup(func() { _ = f.app.Manager().Drop(context.Background(), name) })
	}
	want := map[string]int{"acme": 3, "globex": 2}
	for range 2 {
		require.NoError(t, f.app.Seed(ctx))
		for _, name := range app.DemoTenants {
			assert.Equal(t, want[name], f.count(t, name), name)
		}
	}
}
