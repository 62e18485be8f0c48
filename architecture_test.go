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
	for _, tc := range []struct {
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
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./"+tc.pkg).CombinedOutput()
			require.NoError(t, err, "%s", out)
			var siblings []string
			for _, dep := range strings.Fields(string(out)) {
				if rest, ok := strings.CutPrefix(dep, module+"/"); ok && rest != tc.pkg {
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
