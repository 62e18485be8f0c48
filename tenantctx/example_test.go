package tenantctx_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/tenantkit/tenant/tenantctx"
)

// Handlers read the tenant from the request context; tenant.Middleware put it there.
// Outside it, the session fails clearly instead of querying the wrong schema.
func ExampleSession() {
	ctx := context.Background() // not behind tenant.Middleware
	_, err := tenantctx.Session(ctx).Exec(ctx, "DELETE FROM documents")
	fmt.Println(errors.Is(err, tenantctx.ErrNoSession), tenantctx.Schema(ctx) == "")
	// Output: true true
}

// A test of a handler gives it a session of its own: here none, so queries fail
// clearly; in a real test, a pgx.Tx in the tenant's schema that the test rolls back.
func ExampleNewContext() {
	ctx := tenantctx.NewContext(context.Background(), "acme", nil)
	fmt.Println(tenantctx.Schema(ctx))
	fmt.Println(tenantctx.AfterCommit(ctx, func(context.Context) { fmt.Println("never runs here") }))
	// Output:
	// acme
	// true
}
