package admin_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/admin"
	"github.com/tenantkit/tenant/schema"
)

// Lines prints at most a line a second and one at the end, and each failure on a line
// of its own.
func TestLines(t *testing.T) {
	var out strings.Builder
	p := admin.Lines(&out)
	start := time.Now().Add(-2 * time.Second)
	p.Update(schema.Progress{Total: 4, Started: start})
	p.Update(schema.Progress{Total: 4, Changed: 1, Started: start, Tenant: "acme"})
	p.Update(schema.Progress{Total: 4, Changed: 1, Failed: 1, Started: start, Tenant: "globex", Err: errors.New("boom")})
	p.Update(schema.Progress{Total: 4, Changed: 3, Failed: 1, Started: start, Tenant: "initech"})
	p.Finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3, out.String())
	assert.Regexp(t, `^1/4 done: 1 changed, 0 current, 0 failed, 0 locked, \d+ tenants/s, eta \d+s$`, lines[0])
	assert.Equal(t, "globex: boom", lines[1])
	assert.Regexp(t, `^4/4 done: 3 changed, 0 current, 1 failed, 0 locked, \d+ tenants/s, eta 0s$`, lines[2])
}
