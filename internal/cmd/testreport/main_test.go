package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunAll runs a stand-in for go test in the working directory and in two others
// at once: the others' reports come after the working directory's, whole and in
// order, each with its stderr, and a failure in any of them decides the exit code.
func TestRunAll(t *testing.T) {
	root := t.TempDir()
	for dir, json := range map[string]string{
		"a": `{"Action":"output","Package":"example.com/a","Output":"ok  \texample.com/a\t0.01s\n"}`,
		"b": `{"Action":"output","Package":"example.com/b","Test":"TestB","Output":"    b_test.go:3: broken\n"}
{"Action":"fail","Package":"example.com/b","Test":"TestB"}`,
		"c": `{"Action":"output","Package":"example.com/c","Output":"ok  \texample.com/c\t0.01s\n"}`,
	} {
		assert.NoError(t, os.MkdirAll(filepath.Join(root, dir), 0o755))
		assert.NoError(t, os.WriteFile(filepath.Join(root, dir, "events"), []byte(json+"\n"), 0o644))
	}
	t.Chdir(filepath.Join(root, "a"))
	// The stand-in prints its directory's events, and its directory on stderr.
	cmd := []string{"sh", "-c", `basename "$PWD" >&2; cat events`}
	var stdout, stderr strings.Builder

	code := runAll(cmd, []string{"../b", "../c"}, &stdout, &stderr)

	assert.Equal(t, 1, code, "b's failed test fails the run")
	assert.Equal(t, "a\n", stderr.String())
	// Within a section stderr and the report may interleave: os/exec copies stderr
	// on a goroutine of its own.
	sections := strings.Split(stdout.String(), "# in ")
	require.Len(t, sections, 3)
	assert.Equal(t, []string{"ok  \texample.com/a\t0.01s\n", "../b\n", "../c\n"},
		[]string{sections[0], sections[1][:5], sections[2][:5]})
	assert.ElementsMatch(t, []string{"../b", "b", "    b_test.go:3: broken"}, strings.Split(strings.TrimSuffix(sections[1], "\n"), "\n"))
	assert.ElementsMatch(t, []string{"../c", "c", "ok  \texample.com/c\t0.01s"}, strings.Split(strings.TrimSuffix(sections[2], "\n"), "\n"))

	stdout.Reset()
	assert.Zero(t, runAll(cmd, []string{"../c"}, &stdout, &stderr))
}
