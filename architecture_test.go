package tenant_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The package boundaries the design promises, checked on what each package really
// imports (directly or not, tests aside): the leaves tenantctx and locale import no
// sibling (tenantctx only the internal writing side of its scope), and schema and
// pool know nothing of HTTP.
func TestArchitecture(t *testing.T) {
	const module = "github.com/tenantkit/tenant"
	cases := []struct {
		pkg      string
		siblings []string // the module's packages it may import
		noHTTP   bool
	}{
		{"tenantctx", []string{"internal/scope"}, true},
		{"locale", nil, false},
		{"internal/scope", nil, true},
		{"schema", nil, true},
		{"pool", nil, true},
		{"middleware", nil, false},
		{"tenantsql", []string{"tenantctx", "internal/scope"}, true},
		{"changes", []string{"schema"}, true},
	}
	// One go list for every package: each line is a package and what it imports,
	// directly or not.
	args := []string{"list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}"}
	for _, tc := range cases {
		args = append(args, "./"+tc.pkg)
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		deps[strings.TrimPrefix(fields[0], module+"/")] = fields[1:]
	}
	for _, tc := range cases {
		t.Run(tc.pkg, func(t *testing.T) {
			require.Contains(t, deps, tc.pkg)
			var siblings []string
			for _, dep := range deps[tc.pkg] {
				if rest, ok := strings.CutPrefix(dep, module+"/"); ok {
					siblings = append(siblings, rest)
				}
				if tc.noHTTP {
					assert.NotEqual(t, "net/http", dep, "%s must not depend on net/http", tc.pkg)
				}
			}
			assert.ElementsMatch(t, tc.siblings, siblings, "the module's packages %s imports", tc.pkg)
		})
	}
}
