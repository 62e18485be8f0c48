//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where the kernel cannot signal a child when its parent
// dies: there the children stop when the harness ends normally or is interrupted.
func dieWithParent(*exec.Cmd) {}
