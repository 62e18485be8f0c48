package main

import (
	"strings"
	"testing"
)

// What go test -json prints for a package with a passing, a skipped and a failing
// test (a subtest skipped among them), and for one that does not build.
const events = `{"Action":"start","Package":"example.com/a"}
{"Action":"run","Package":"example.com/a","Test":"TestPass"}
{"Action":"output","Package":"example.com/a","Test":"TestPass","Output":"=== RUN   TestPass\n"}
{"Action":"output","Package":"example.com/a","Test":"TestPass","Output":"    a_test.go:9: chatter\n"}
{"Action":"output","Package":"example.com/a","Test":"TestPass","Output":"--- PASS: TestPass (0.00s)\n"}
{"Action":"pass","Package":"example.com/a","Test":"TestPass"}
{"Action":"run","Package":"example.com/a","Test":"TestBrowser"}
{"Action":"output","Package":"example.com/a","Test":"TestBrowser","Output":"=== RUN   TestBrowser\n"}
{"Action":"output","Package":"example.com/a","Test":"TestBrowser","Output":"    a_test.go:12: Chromium not found\n"}
{"Action":"output","Package":"example.com/a","Test":"TestBrowser","Output":"--- SKIP: TestBrowser (0.00s)\n"}
{"Action":"skip","Package":"example.com/a","Test":"TestBrowser"}
{"Action":"output","Package":"example.com/a","Test":"TestSub/x","Output":"=== RUN   TestSub/x\n"}
{"Action":"output","Package":"example.com/a","Test":"TestSub/x","Output":"    --- SKIP: TestSub/x (0.00s)\n"}
{"Action":"skip","Package":"example.com/a","Test":"TestSub/x"}
{"Action":"pass","Package":"example.com/a","Test":"TestSub"}
{"Action":"output","Package":"example.com/a","Test":"TestFail","Output":"=== RUN   TestFail\n"}
{"Action":"output","Package":"example.com/a","Test":"TestFail","Output":"    a_test.go:20: want 1, got 2\n"}
{"Action":"output","Package":"example.com/a","Test":"TestFail","Output":"--- FAIL: TestFail (0.00s)\n"}
{"Action":"fail","Package":"example.com/a","Test":"TestFail"}
{"Action":"output","Package":"example.com/a","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/a","Output":"FAIL\texample.com/a\t0.01s\n"}
{"Action":"fail","Package":"example.com/a"}
{"ImportPath":"example.com/b","Action":"build-output","Output":"b.go:3:1: syntax error\n"}
{"ImportPath":"example.com/b","Action":"build-fail"}
{"Action":"output","Package":"example.com/c","Output":"PASS\n"}
{"Action":"output","Package":"example.com/c","Output":"ok  \texample.com/c\t0.01s\n"}
{"Action":"pass","Package":"example.com/c"}
`

func TestReport(t *testing.T) {
	var out strings.Builder
	r := newReport(&out)
	if err := r.read(strings.NewReader(events)); err != nil {
		t.Fatal(err)
	}
	r.summary()
	want := `    a_test.go:12: Chromium not found
--- SKIP: TestBrowser in example.com/a (0.00s)
    --- SKIP: TestSub/x in example.com/a (0.00s)
=== RUN   TestFail
    a_test.go:20: want 1, got 2
--- FAIL: TestFail (0.00s)
FAIL
FAIL	example.com/a	0.01s
b.go:3:1: syntax error
ok  	example.com/c	0.01s
skipped 2: TestBrowser in example.com/a, TestSub/x in example.com/a
`
	if got := out.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !r.failed {
		t.Error("a failed test must fail the report")
	}
}
