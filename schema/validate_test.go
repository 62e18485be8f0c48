package schema_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/schema"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		rule error // nil: valid
	}{
		{"my_schema", nil},
		{"my-schema", nil},
		{"acme", nil},
		{"municipalities-new_york", nil},
		{"a", nil},
		{"_x", nil},
		{"x0", nil},
		{strings.Repeat("a", 63), nil},
		{"", schema.ErrEmpty},
		{strings.Repeat("a", 64), schema.ErrTooLong},
		{"acme\n", schema.ErrTrailingNewline},
		{"pg_test", schema.ErrPgPrefix},
		{"pg_", schema.ErrPgPrefix},
		{"-- or 1=1", schema.ErrCharacters},
		{"my--schema", schema.ErrDoubleDash},
		{"0", schema.ErrLeadingDigit},
		{"9lives", schema.ErrLeadingDigit},
		{"public", schema.ErrReserved},
		{"information_schema", schema.ErrReserved},
		{"extensions", schema.ErrReserved},
		{"Acme", schema.ErrCharacters},
		{"ac me", schema.ErrCharacters},
		{"acme;drop", schema.ErrCharacters},
		{`ac"me`, schema.ErrCharacters},
		{"acme.public", schema.ErrCharacters},
		{"acmé", schema.ErrCharacters},
		{"acme\x00", schema.ErrCharacters},
		{"\nacme", schema.ErrCharacters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.Validate(tt.name)
			if tt.rule == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, schema.ErrInvalidName)
			assert.ErrorIs(t, err, tt.rule)
			var ne *schema.NameError
			require.ErrorAs(t, err, &ne)
			assert.Equal(t, tt.name, ne.Name)
		})
	}
}

// The application's reserved names add to the built-in ones, given to Validate or to
// a Provisioner (which also reports the rule before any SQL: it needs no database).
func TestValidateReserved(t *testing.T) {
	p, err := schema.NewProvisioner(nil, schema.Config{Reserved: []string{"audit", "shared"}})
	require.NoError(t, err)
	tests := []struct {
		name     string
		reserved []string
		rule     error // nil: valid
	}{
		{"audit", []string{"audit", "shared"}, schema.ErrReserved},
		{"shared", []string{"audit", "shared"}, schema.ErrReserved},
		{"public", []string{"audit", "shared"}, schema.ErrReserved}, // built-in names stay reserved
		{"tenant_registry", nil, schema.ErrReserved},
		{"acme", []string{"audit", "shared"}, nil},
		{"audit", nil, nil}, // without the application's list only the built-in names are reserved
		{"Audit", []string{"Audit"}, schema.ErrCharacters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.Validate(tt.name, tt.reserved...)
			if tt.rule == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.rule)
			if slices.Equal(tt.reserved, []string{"audit", "shared"}) {
				assert.Equal(t, err, p.Validate(tt.name), "the Provisioner applies its Config.Reserved")
			}
		})
	}
}

func TestFromApplicationID(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"municipalities/new-york", "municipalities-new_york", nil},
		{"foo/bar", "foo-bar", nil},
		{"foo/bar_baz", "", schema.ErrInvalidApplicationID}, // '_' would share a schema with "foo/bar-baz"
		{"foo", "", schema.ErrInvalidApplicationID},
		{"foo/", "", schema.ErrInvalidApplicationID},
		{"foo/bar/baz", "", schema.ErrInvalidApplicationID},
		{"/bar", "", schema.ErrInvalidNamespace},
		{"my-ns/bar", "", schema.ErrInvalidNamespace},
		{"pg_x/bar", "", schema.ErrInvalidNamespace},
		{"foo/Bar", "", schema.ErrInvalidName},
		{"foo/a--b", "", nil}, // '-' becomes '_': "foo-a__b" is fine
		{"foo/" + strings.Repeat("x", 60), "", schema.ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := schema.FromApplicationID(tt.in)
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			if tt.want != "" {
				assert.Equal(t, tt.want, got)
			}
		})
	}
	got, err := schema.FromApplicationID("foo/a--b")
	require.NoError(t, err)
	assert.Equal(t, "foo-a__b", got)
}

var documented = regexp.MustCompile(`\A[a-z_-][a-z0-9_-]*\z`)

// FuzzValidate: whatever passes matches the documented pattern, is at most 63 bytes
// and breaks none of the other rules.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"pg_test", "-- or 1=1", "0", "information_schema", "public",
		"my--schema", "my_schema", "my-schema", "acme\n", "ACME", strings.Repeat("z", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := schema.Validate(name)
		if err != nil {
			if !assert.ErrorIs(t, err, schema.ErrInvalidName) {
				t.Fatalf("error for %q does not wrap ErrInvalidName: %v", name, err)
			}
			return
		}
		if !documented.MatchString(name) || len(name) > schema.MaxNameLength ||
			strings.HasPrefix(name, "pg_") || strings.Contains(name, "--") ||
			name == "public" || name == "information_schema" || name == "extensions" {
			t.Fatalf("Validate accepted %q", name)
		}
	})
}
