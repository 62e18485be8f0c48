package main

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	before, ok := procCPU(os.Getpid())
	require.True(t, ok)
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; { // spend some
	}
	after, ok := procCPU(os.Getpid())
	require.True(t, ok)
	assert.GreaterOrEqual(t, after-before, 20*time.Millisecond)
	_, ok = procCPU(-1)
	assert.False(t, ok)
}

func TestFormatCPU(t *testing.T) {
	assert.Equal(t, "–", formatCPU(summary{}))
	assert.Equal(t, "120 µs, 95 µs", formatCPU(summary{serverCPU: 120 * time.Microsecond, postgresCPU: 95 * time.Microsecond}))
}
