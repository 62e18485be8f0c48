package tenant

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
