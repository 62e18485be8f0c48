package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A file that is not a terminal gets the library's plain lines, not a bar.
func TestMigrateProgressBarOnlyOnATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer f.Close()
	_, isBar := newProgress(f).(*bar)
	assert.False(t, isBar)
}
