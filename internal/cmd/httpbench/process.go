package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds how long a child may take to say where it listens.
const startTimeout = time.Minute

// stopTimeout is how long a child has to exit after SIGTERM before it is killed.
const stopTimeout = 5 * time.Second

// child is a process the harness started: a server or the delaying proxy. It is
// stopped by Stop, or by SIGTERM when the context it was started with ends (Ctrl-C),
// and on Linux killed if the harness dies first.
type child struct {
	name   string
	pid    int
	addr   string // where it listens, as it printed
	out    *outputLog
	cancel context.CancelFunc
	done   chan struct{} // closed when it has exited
	err    error         // its exit, once done is closed
}

// startChild runs bin with args and extra environment, and returns once the child has
// printed the address it listens on ("... listening on ADDR" or "... serving on ADDR").
func startChild(ctx context.Context, name, bin string, args, env []string) (*child, error) {
	cctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopTimeout
	c := &child{name: name, out: &outputLog{}, cancel: cancel, done: make(chan struct{})}
	found := make(chan string, 1)
	cmd.Stdout = &addrWatcher{log: c.out, found: found}
	cmd.Stderr = c.out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c.pid = cmd.Process.Pid
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case c.addr = <-found:
		return c, nil
	case <-c.done:
		return nil, c.failed(fmt.Errorf("exited before listening: %v", c.err))
	case <-timer.C:
		c.Stop()
		return nil, c.failed(errors.New("did not listen within " + startTimeout.String()))
	case <-ctx.Done():
		c.Stop()
		return nil, ctx.Err()
	}
}

// Stop ends the child (SIGTERM, then SIGKILL after stopTimeout) and waits for it.
func (c *child) Stop() {
	c.cancel()
	<-c.done
}

// failed wraps err with the child's name and the end of its output.
func (c *child) failed(err error) error {
	return fmt.Errorf("%s: %w\n--- its output (last lines) ---\n%s", c.name, err, c.out.tail())
}

// children are the processes of a run, stopped together.
type children struct {
	mu   sync.Mutex
	list []*child
}

// add remembers c for stopAll.
func (cs *children) add(c *child) {
	cs.mu.Lock()
	cs.list = append(cs.list, c)
	cs.mu.Unlock()
}

// stopAll stops every child still running, the latest first.
func (cs *children) stopAll() {
	cs.mu.Lock()
	list := cs.list
	cs.list = nil
	cs.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].Stop()
	}
}
