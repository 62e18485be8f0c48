// Command testreport runs go test -json and prints what go test prints without -v (a
// line per package, and the output of each failing test), plus every skipped test
// with its reason: without -v go test hides skips, so a test skipped for a missing
// tool (Chromium, PgBouncer) would pass unseen. make test runs it:
//
//	go run ./internal/cmd/testreport -also example-app go test -race -count=1 -json ./...
//
// Each -also directory (another module) runs the same command at the same time, in
// that directory; its report is held back and printed, whole, after the working
// directory's. The exit code is the first failed run's: its command's, or 1 when the
// command passed but a test failed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
)

func main() {
	var also []string
	flag.Func("also", "another `directory` to run the command in, at the same time (repeatable)", func(dir string) error {
		also = append(also, dir)
		return nil
	})
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: testreport [-also dir]... go test -json [flags] [packages]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	signal.Ignore(os.Interrupt) // Ctrl-C reaches go test too: report what it prints as it stops
	os.Exit(runAll(flag.Args(), also, os.Stdout, os.Stderr))
}

// runAll runs the command in the working directory, its report streaming to stdout
// and stderr, and at the same time in each of also, their reports held back and
// written to stdout after it, in order. It returns the first failed run's exit code.
func runAll(args, also []string, stdout, stderr io.Writer) int {
	codes := make([]int, len(also))
	outs := make([]lockedBuffer, len(also))
	var wg sync.WaitGroup
	for i, dir := range also {
		wg.Go(func() {
			fmt.Fprintf(&outs[i], "# in %s\n", dir)
			codes[i] = run(dir, args, &outs[i], &outs[i])
		})
	}
	code := run("", args, stdout, stderr)
	wg.Wait()
	for i := range also {
		_, _ = stdout.Write(outs[i].b.Bytes())
		if code == 0 {
			code = codes[i]
		}
	}
	return code
}

// lockedBuffer is a buffer that a command's stderr (copied by os/exec's goroutine)
// and its report write to at the same time.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// run runs the command in dir ("" for the working directory), its report to w and
// its stderr to errw, and returns the exit code for it.
func run(dir string, args []string, w, errw io.Writer) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Stderr = dir, errw
	if dir == "" {
		cmd.Stdin = os.Stdin
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(w, "testreport: %v\n", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(w, "testreport: %v\n", err)
		return 1
	}
	r := newReport(w)
	readErr := r.read(stdout)
	waitErr := cmd.Wait()
	r.summary()
	switch {
	case waitErr != nil:
		if exit, ok := waitErr.(*exec.ExitError); ok && exit.ExitCode() > 0 {
			return exit.ExitCode()
		}
		fmt.Fprintf(w, "testreport: %v\n", waitErr)
		return 1
	case readErr != nil:
		fmt.Fprintf(w, "testreport: reading go test -json: %v\n", readErr)
		return 1
	case r.failed:
		return 1
	}
	return 0
}
