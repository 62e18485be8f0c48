package tenant

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A connection retires after the transaction that makes it the bound's number of
// distinct tenants'; a tenant served again does not count twice; no bound, no
// retirement.
func TestConnStateServe(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		tenants []string
		want    []bool
	}{
		{"no bound", 0, []string{"a", "b", "c"}, []bool{false, false, false}},
		{"bound of one", 1, []string{"a"}, []bool{true}},
		{"a tenant again counts once", 3, []string{"a", "a", "b", "a", "c"}, []bool{false, false, false, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st connState
			for i, name := range tt.tenants {
				assert.Equal(t, tt.want[i], st.serve(name, tt.max), "transaction %d (%s)", i+1, name)
			}
			assert.LessOrEqual(t, len(st.tenants), max(tt.max, 0))
		})
	}
}
