package tenanttest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenanttest"
)

// exampleManager is what a test gets from New and Tenant; an Example has no testing.T,
// so it makes and provisions them itself and returns how to undo that.
func exampleManager(name string) (*tenant.Manager, func()) {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{DSN: tenanttest.DatabaseURL(), Migrations: migrations})
	if err != nil {
		panic(err)
	}
	if err := mgr.Provisioner().Ensure(ctx, name); err != nil {
		panic(err)
	}
	return mgr, func() {
		_ = mgr.Drop(ctx, name)
		mgr.Close()
	}
}

// count prints how many notes the tenant has, in a transaction of its own.
func count(mgr *tenant.Manager, name, when string) {
	_ = mgr.Run(context.Background(), name, func(ctx context.Context) error {
		var n int
		err := tenantctx.Session(ctx).QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n)
		fmt.Printf("notes %s: %d\n", when, n)
		return err
	})
}

// A test's transaction: what it writes is visible in it and gone after it, and its
// after-commit functions wait for the test to check or call them. In a test,
// tenanttest.Context(t, mgr, "ex_acme") does this and ends it at cleanup.
func ExampleBegin() {
	mgr, done := exampleManager("ex_acme")
	defer done()

	ctx, end, err := tenanttest.Begin(context.Background(), mgr, "ex_acme")
	if err != nil {
		panic(err)
	}
	db := tenantctx.Session(ctx)
	if _, err := db.Exec(ctx, "INSERT INTO notes (body) VALUES ('draft')"); err != nil {
		panic(err)
	}
	var n int
	_ = db.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n)
	fmt.Println("notes in the test:", n)
	tenantctx.AfterCommit(ctx, func(context.Context) { fmt.Println("mail sent") })
	fmt.Println("after-commit functions waiting:", len(tenanttest.AfterCommitFuncs(ctx)))

	fmt.Println("end:", end())
	count(mgr, "ex_acme", "after the test")
	// Output:
	// notes in the test: 1
	// after-commit functions waiting: 1
	// end: <nil>
	// notes after the test: 0
}

// listNotes is an application's handler: it reads the session from the request.
func listNotes(w http.ResponseWriter, r *http.Request) {
	rows, err := tenantctx.Session(r.Context()).Query(r.Context(), "SELECT body FROM notes ORDER BY id")
	if err != nil {
		http.Error(w, "could not read", http.StatusInternalServerError)
		return
	}
	defer rows.Close()
	var bodies []string
	for rows.Next() {
		var b string
		_ = rows.Scan(&b)
		bodies = append(bodies, b)
	}
	fmt.Fprint(w, strings.Join(bodies, ", "))
}

// Testing a handler in the test's transaction: the fixture it reads and what it writes
// are rolled back with the test. The request does not go through tenant.Middleware,
// which would begin a transaction of its own.
func Example_handler() {
	mgr, done := exampleManager("ex_globex")
	defer done()
	ctx, end, err := tenanttest.Begin(context.Background(), mgr, "ex_globex")
	if err != nil {
		panic(err)
	}
	defer end()

	if _, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO notes (body) VALUES ('fixture')"); err != nil {
		panic(err)
	}
	rec := httptest.NewRecorder()
	listNotes(rec, httptest.NewRequestWithContext(ctx, "GET", "/notes", nil))
	fmt.Println(rec.Code, rec.Body.String())
	// Output: 200 fixture
}
