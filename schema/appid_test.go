package schema_test

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"testing/quick"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/schema"
)

// toApplicationID inverts FromApplicationID: the first '-' separates the namespace and
// every '_' after it was a '-' in the id.
func toApplicationID(name string) (string, bool) {
	ns, id, ok := strings.Cut(name, "-")
	if !ok {
		return "", false
	}
	return ns + "/" + strings.ReplaceAll(id, "_", "-"), true
}

func TestFromApplicationIDInjective(t *testing.T) {
	idErr := []error{schema.ErrInvalidApplicationID}
	// Other bad characters also match ErrInvalidName, as before ids were checked.
	charErr := []error{schema.ErrInvalidApplicationID, schema.ErrInvalidName}
	tests := []struct {
		in, want string
		errs     []error
	}{
		{"ns/new-york", "ns-new_york", nil},
		{"ns/new_york", "", idErr}, // would collide with ns/new-york
		{"ns/a--b", "ns-a__b", nil},
		{"ns/a__b", "", idErr}, // would collide with ns/a--b
		{"ns/a-_b", "", idErr}, // would collide with ns/a--b
		{"ns/_", "", idErr},
		{"ns/-a-", "ns-_a_", nil},
		{"ns/0a9", "ns-0a9", nil}, // the namespace comes first, so a leading digit is fine
		{"n_s/a-b", "n_s-a_b", nil},
		{"ns/A", "", charErr},
		{"ns/a.b", "", charErr},
		{"ns/a b", "", charErr},
		{"ns/a\n", "", charErr},
		{"ns/" + strings.Repeat("x", 61), "", []error{schema.ErrInvalidName, schema.ErrTooLong}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := schema.FromApplicationID(tt.in)
			if tt.errs != nil {
				for _, e := range tt.errs {
					assert.ErrorIs(t, err, e)
				}
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			back, ok := toApplicationID(got)
			assert.True(t, ok)
			assert.Equal(t, tt.in, back)
		})
	}
}

// appID is a random application id over a small alphabet, so that near misses such as
// "ns/a-b" and "ns/a_b" come up often.
type appID string

const appIDAlphabet = "abz09-_/"

// Generate builds "namespace/id", each part from the alphabet (so it may hold stray
// '/'), with the namespace often a fixed valid one so most ids reach the mapping.
func (appID) Generate(r *rand.Rand, _ int) reflect.Value {
	part := func(max int) string {
		b := make([]byte, r.Intn(max+1))
		for i := range b {
			b[i] = appIDAlphabet[r.Intn(len(appIDAlphabet))]
		}
		return string(b)
	}
	ns := part(3)
	if r.Intn(2) == 0 {
		ns = []string{"a", "ns", "z0"}[r.Intn(3)]
	}
	return reflect.ValueOf(appID(ns + "/" + part(6)))
}

// TestFromApplicationIDProperties: accepted ids map back from their schema name, and no
// two accepted ids share a schema, neither among all ids generated in the run nor
// between an id and its twins with '-' and '_' swapped.
func TestFromApplicationIDProperties(t *testing.T) {
	seen := map[string]string{} // schema name → the accepted id that gave it
	accept := func(id string) bool {
		name, err := schema.FromApplicationID(id)
		if err != nil {
			return true
		}
		if back, ok := toApplicationID(name); !ok || back != id {
			t.Logf("%q → %q → %q", id, name, back)
			return false
		}
		if other, dup := seen[name]; dup && other != id {
			t.Logf("%q and %q both → %q", id, other, name)
			return false
		}
		seen[name] = id
		return true
	}
	prop := func(a appID) bool {
		id := string(a)
		ns, rest, _ := strings.Cut(id, "/")
		swapped := strings.Map(func(c rune) rune {
			switch c {
			case '-':
				return '_'
			case '_':
				return '-'
			}
			return c
		}, rest)
		return accept(id) && accept(ns+"/"+swapped) &&
			accept(ns+"/"+strings.ReplaceAll(rest, "-", "_")) &&
			accept(ns+"/"+strings.ReplaceAll(rest, "_", "-"))
	}
	require.NoError(t, quick.Check(prop, &quick.Config{MaxCount: 5000}))
}

func TestFromApplicationIDUnderscoreMessage(t *testing.T) {
	_, err := schema.FromApplicationID("ns/new_york")
	require.ErrorIs(t, err, schema.ErrInvalidApplicationID)
	assert.ErrorContains(t, err, "'_'", "the error says why the id is refused")
}
