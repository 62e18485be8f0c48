package main

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shChild starts a shell that runs setup, announces an address, then runs script.
func shChild(ctx context.Context, t *testing.T, setup, script string) *child {
	t.Helper()
	sh, err := exec.LookPath("sh")
	require.NoError(t, err)
	c, err := startChild(ctx, "sh", sh, []string{"-c", setup + "echo 'fake: listening on 127.0.0.1:1'; " + script}, nil)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:1", c.addr)
	return c
}

// A child ends when the run's context does (Ctrl-C) and when it is stopped: no
// process outlives the harness.
func TestChildStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := shChild(ctx, t, "", "exec sleep 60")
	cancel()
	select {
	case <-c.done:
	case <-time.After(2 * stopTimeout):
		t.Fatal("the child outlived its context")
	}

	c = shChild(context.Background(), t, "", "exec sleep 60")
	start := time.Now()
	c.Stop()
	assert.Less(t, time.Since(start), stopTimeout, "SIGTERM is enough")

	// One that ignores SIGTERM is killed (its sleeps are short: they are not the
	// child, and outlive it).
	c = shChild(context.Background(), t, "trap '' TERM; ", "while :; do sleep 0.1; done")
	start = time.Now()
	c.Stop()
	assert.GreaterOrEqual(t, time.Since(start), stopTimeout)
	assert.ErrorContains(t, c.err, "killed")
}

// A child that exits before announcing an address fails with its output.
func TestChildExitsEarly(t *testing.T) {
	sh, err := exec.LookPath("sh")
	require.NoError(t, err)
	_, err = startChild(context.Background(), "broken", sh, []string{"-c", "echo 'no database' >&2; exit 3"}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken: exited before listening")
	assert.Contains(t, err.Error(), "no database")
}
