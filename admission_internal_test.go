package tenant

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// A check under way when a tenant is forgotten (Manager.Drop) may have read the
// registry before the drop: its answer goes to its callers but is not remembered, so
// the next request checks again. A check with no forget since is remembered.
func TestForgetOutranksChecksUnderWay(t *testing.T) {
	tests := []struct {
		name       string
		forget     string // forgotten while the check runs; "" for none
		remembered bool
	}{
		{"no forget", "", true},
		{"that tenant forgotten", "acme", false},
		{"another tenant forgotten", "globex", false}, // coarse, and only costs a query
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdmitter(nil, ExistingOnly(), nil, time.Minute, time.Minute)
			gen := a.generation() // the check begins
			if tt.forget != "" {
				a.forget(tt.forget)
			}
			a.store("acme", &binding{name: "acme"}, gen) // and ends
			_, cached := a.lookup("acme", time.Now())
			assert.Equal(t, tt.remembered, cached)

			a.store("acme", &binding{name: "acme"}, a.generation())
			_, cached = a.lookup("acme", time.Now())
			assert.True(t, cached, "a check begun after the forget is remembered")
		})
	}
}

// A full cache first drops what expired; still full of fresh entries, it stops
// remembering (the name is checked each time) rather than grow under a flood.
func TestFullAdmissionCache(t *testing.T) {
	a := newAdmitter(nil, ExistingOnly(), nil, time.Minute, time.Minute)
	a.maxEntries = 2
	a.store("a", nil, a.generation())
	a.store("b", nil, a.generation())
	a.store("c", nil, a.generation())
	_, cached := a.lookup("c", time.Now())
	assert.False(t, cached, "full of fresh entries: not remembered")
	assert.Len(t, a.cache, 2)

	a.mu.Lock()
	e := a.cache["a"]
	e.expires = time.Now().Add(-time.Second)
	a.cache["a"] = e
	a.mu.Unlock()
	a.store("c", nil, a.generation())
	_, cached = a.lookup("c", time.Now())
	assert.True(t, cached, "an expired entry made room")
	_, cached = a.lookup("a", time.Now())
	assert.False(t, cached)
	assert.Len(t, a.cache, 2)
}

// A request whose begin found its tenant's marker gone asks admission again (refresh).
// Another request's check may have read the registry just before the drop committed
// and remembered the tenant anew, as a binding of its own: refresh must not answer
// that one, as stale as the binding that failed, but ask the registry again.
func TestRefreshSkipsACopyOfTheStaleBinding(t *testing.T) {
	ctx := context.Background()
	p, err := schema.NewProvisioner(testdb.Pool(t), schema.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	const name = "refresh_stale"
	require.NoError(t, p.Ensure(ctx, name))
	t.Cleanup(func() { _ = p.Drop(ctx, name) })
	bind := func(t schema.Tenant) *binding { return newBinding(t, "SERIALIZABLE") }
	a := newAdmitter(p, ExistingOnly(), bind, time.Minute, time.Minute)
	stale, err := a.admit(ctx, name)
	require.NoError(t, err)
	read, err := p.Lookup(ctx, name) // another check reads the registry
	require.NoError(t, err)

	require.NoError(t, p.Drop(ctx, name)) // by another process: nothing forgotten here
	a.store(name, bind(read), a.generation())
	_, err = a.refresh(ctx, stale)
	assert.ErrorIs(t, err, ErrUnknownTenant)
}
