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

// Side effects go after the commit, so no mail leaves for a rolled-back order.
func ExampleAfterCommit() {
	scope := tenantctx.NewScope("acme", nil) // what tenant.Middleware attaches per request
	ctx := tenantctx.WithScope(context.Background(), scope)

	tenantctx.AfterCommit(ctx, func(context.Context) { fmt.Println("send confirmation mail") })
	fmt.Println("handler done")

	for _, fn := range scope.AfterCommitFuncs() { // the middleware does this after COMMIT
		fn(ctx)
	}
	// Output:
	// handler done
	// send confirmation mail
}
