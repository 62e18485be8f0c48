package main

import (
	"os"
	"syscall"
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
	// Spend 50 ms of CPU, counted by getrusage rather than by the clock: on a busy
	// machine 50 ms of wall time can hold less than 20 ms of this process's CPU.
	for start, spent := time.Now(), selfCPU(t); selfCPU(t)-spent < 50*time.Millisecond; {
		require.Less(t, time.Since(start), time.Minute, "no CPU for this process")
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

// selfCPU is this process's user and system CPU time, as getrusage counts it.
func selfCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
