package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/schema"
)

// Off a terminal, progress is plain lines (at most one a second, and one at the end),
// with each failure on a line of its own.
func TestMigrateProgressLines(t *testing.T) {
	var out strings.Builder
	p := newProgress(&out)
	start := time.Now().Add(-2 * time.Second)
	p.update(schema.Progress{Total: 4, Started: start})
	p.update(schema.Progress{Total: 4, Changed: 1, Started: start, Tenant: "acme"})
	p.update(schema.Progress{Total: 4, Changed: 1, Failed: 1, Started: start, Tenant: "globex", Err: errors.New("boom")})
	p.update(schema.Progress{Total: 4, Changed: 3, Failed: 1, Started: start, Tenant: "initech"})
	p.finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3, out.String())
	assert.Regexp(t, `^1/4 done: 1 changed, 0 current, 0 failed, 0 locked, \d+ tenants/s, eta \d+s$`, lines[0])
	assert.Equal(t, "globex: boom", lines[1])
	assert.Regexp(t, `^4/4 done: 3 changed, 0 current, 1 failed, 0 locked, \d+ tenants/s, eta 0s$`, lines[2])
}

// A file that is not a terminal gets plain lines, not a bar.
func TestMigrateProgressBarOnlyOnATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer f.Close()
	assert.Nil(t, newProgress(f).bar)
}
