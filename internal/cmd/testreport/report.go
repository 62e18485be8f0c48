package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// event is a line of go test -json (go doc test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // of build-output and build-fail
}

type testKey struct{ pkg, test string }

// report turns events into go test's plain output, plus skips.
type report struct {
	w       io.Writer
	pending map[testKey][]string // output of tests still running
	skipped []string             // "pkg TestName"
	failed  bool
}

func newReport(w io.Writer) *report {
	return &report{w: w, pending: make(map[testKey][]string)}
}

// read handles events until r ends. A line that is not JSON (go test's own errors
// before any test runs) is printed as it is.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024) // a test may log long lines
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(r.w, sc.Text())
			continue
		}
		r.handle(e)
	}
	return sc.Err()
}

func (r *report) handle(e event) {
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.w, e.Output)
		return
	case "build-fail":
		r.failed = true
		return
	}
	if e.Test == "" {
		r.packageEvent(e)
		return
	}
	k := testKey{e.Package, e.Test}
	switch e.Action {
	case "output":
		r.pending[k] = append(r.pending[k], e.Output)
	case "pass":
		delete(r.pending, k)
	case "skip":
		r.skipped = append(r.skipped, e.Test+" in "+e.Package)
		for _, line := range r.pending[k] {
			if !progress(line) {
				fmt.Fprint(r.w, strings.Replace(line, "--- SKIP: "+e.Test, "--- SKIP: "+e.Test+" in "+e.Package, 1))
			}
		}
		delete(r.pending, k)
	case "fail":
		r.failed = true
		r.flush(k)
	}
}

// packageEvent prints what go test prints for a package without -v: its ok or FAIL
// line, and whatever a crashed test binary wrote.
func (r *report) packageEvent(e event) {
	switch e.Action {
	case "output":
		if e.Output != "PASS\n" && !progress(e.Output) {
			fmt.Fprint(r.w, e.Output)
		}
	case "fail":
		r.failed = true
		// Tests still running when the package failed (a panic elsewhere, a timeout):
		// their output says where each one was.
		for k := range r.pending {
			if k.pkg == e.Package {
				r.flush(k)
			}
		}
	}
}

// flush prints a failed test's output; of -v's progress lines only "=== RUN" stays,
// which names a test that failed without a word.
func (r *report) flush(k testKey) {
	for _, line := range r.pending[k] {
		if !progress(line) || strings.HasPrefix(line, "=== RUN") {
			fmt.Fprint(r.w, line)
		}
	}
	delete(r.pending, k)
}

// summary repeats the skipped tests in one line at the end, where they are seen.
func (r *report) summary() {
	if len(r.skipped) > 0 {
		fmt.Fprintf(r.w, "skipped %d: %s\n", len(r.skipped), strings.Join(r.skipped, ", "))
	}
}

// progress reports the lines -v adds for every test: === RUN, PAUSE, CONT, NAME.
func progress(line string) bool {
	return strings.HasPrefix(line, "=== ")
}
