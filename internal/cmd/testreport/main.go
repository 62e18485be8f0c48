// Command testreport runs go test -json and prints what go test prints without -v (a
// line per package, and the output of each failing test), plus every skipped test
// with its reason: without -v go test hides skips, so a test skipped for a missing
// tool (Chromium, PgBouncer) would pass unseen. make test runs it:
//
//	go run ./internal/cmd/testreport go test -race -count=1 -json ./...
//
// Its exit code is the command's, or 1 when the command passed but a test failed.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testreport go test -json [flags] [packages]")
		os.Exit(2)
	}
	signal.Ignore(os.Interrupt) // Ctrl-C reaches go test too: report what it prints as it stops
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(1)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(1)
	}
	r := newReport(os.Stdout)
	readErr := r.read(stdout)
	waitErr := cmd.Wait()
	r.summary()
	switch {
	case waitErr != nil:
		if exit, ok := waitErr.(*exec.ExitError); ok && exit.ExitCode() > 0 {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintf(os.Stderr, "testreport: %v\n", waitErr)
		os.Exit(1)
	case readErr != nil:
		fmt.Fprintf(os.Stderr, "testreport: reading go test -json: %v\n", readErr)
		os.Exit(1)
	case r.failed:
		os.Exit(1)
	}
}
