package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the child when the harness dies, even by
// SIGKILL, so that no server outlives a run. (Strictly, when the thread that started
// it ends: the Go runtime ends a thread only when a goroutine locked to it exits, which
// the harness never does.)
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
