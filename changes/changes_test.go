package changes

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What the trigger function sends, read back; anything else on the channel (another
// program's NOTIFY) is refused, not guessed at.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    []Change
		err     string
	}{
		{`{"s":"acme","t":"docs","o":"I","k":[["1"],["2"]]}`, []Change{
			{Schema: "acme", Table: "docs", Op: Insert, Key: []string{"1"}},
			{Schema: "acme", Table: "docs", Op: Insert, Key: []string{"2"}},
		}, ""},
		{`{"s":"acme","t":"pairs","o":"D","k":[["x\"y", "7"]]}`, []Change{{Schema: "acme", Table: "pairs", Op: Delete, Key: []string{`x"y`, "7"}}}, ""},
		{`{"s":"acme","t":"docs","o":"U","k":[null]}`, []Change{{Schema: "acme", Table: "docs", Op: Update}}, ""},
		{`{"s":"acme","t":"docs","o":"T","k":[]}`, []Change{{Schema: "acme", Table: "docs", Op: Truncate}}, ""},
		{`{"s":"acme","t":"docs","o":"X","k":[]}`, nil, "not one"},
		{`{"s":"","t":"docs","o":"I","k":[]}`, nil, "not one"},
		{`hello`, nil, "not one"},
	} {
		got, err := parse(tc.payload)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.payload)
			continue
		}
		require.NoError(t, err, tc.payload)
		assert.Equal(t, tc.want, got, tc.payload)
	}
}

func TestFilter(t *testing.T) {
	c := Change{Schema: "acme", Table: "docs"}
	for _, tc := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Schema: "acme"}, true},
		{Filter{Schema: "globex"}, false},
		{Filter{Schema: "acme", Table: "docs"}, true},
		{Filter{Table: "notes"}, false},
	} {
		assert.Equal(t, tc.want, tc.f.matches(c), "%+v", tc.f)
	}
}

func TestStrings(t *testing.T) {
	assert.Equal(t, "insert acme.docs 5", Change{Schema: "acme", Table: "docs", Op: Insert, Key: []string{"5"}}.String())
	assert.Equal(t, "truncate acme.docs ", Change{Schema: "acme", Table: "docs", Op: Truncate}.String())
	assert.Equal(t, `Op('x')`, Op('x').String())
}
