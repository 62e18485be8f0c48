package tenant_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
)

// A handler that ends the request's transaction itself, or unbinds it from the tenant,
// fails the request with 500: a 2xx always means the lifecycle's own transaction
// committed. Statements after the end are refused (they would commit on their own),
// and after-commit functions do not run.
func TestHandlerEndingTheTransactionFails(t *testing.T) {
	a := newTenantName("txe")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	for _, tc := range []struct {
		name     string
		end      string   // what the handler sends after inserting "before"
		kept     []string // what is in the table afterwards
		refusing bool     // whether the session refuses the handler's next statement
	}{
		{"ROLLBACK", "ROLLBACK", nil, true},
		{"COMMIT", "COMMIT", []string{"before"}, true},
		{"a script with its own BEGIN and COMMIT",
			"INSERT INTO items (name) VALUES ('script'); BEGIN; INSERT INTO items (name) VALUES ('script2'); COMMIT",
			[]string{"before", "script", "script2"}, true},
		{"COMMIT AND CHAIN", "COMMIT AND CHAIN", []string{"before"}, false},
		{"RESET ALL", "RESET ALL", nil, false},
		{"SET LOCAL search_path", "SET LOCAL search_path TO public", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.admin.Exec(context.Background(), `TRUNCATE "`+a+`".items`)
			require.NoError(t, err)
			var afterErr error
			var hooks atomic.Int32
			h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				db := tenantctx.Session(r.Context())
				insertItem(t, r, "before")
				_, err := db.Exec(r.Context(), tc.end)
				if !assert.NoError(t, err) {
					return
				}
				after := "SELECT 1" // a transaction is open, just not ours: the end's check finds it
				if tc.refusing {
					after = "INSERT INTO items (name) VALUES ('after')" // would commit on its own
				}
				_, afterErr = db.Exec(r.Context(), after)
				tenantctx.AfterCommit(r.Context(), func(context.Context) { hooks.Add(1) })
				w.WriteHeader(201)
			}))
			rec := do(h, "POST", "/", nil, "X-Tenant", a)
			assert.Equal(t, 500, rec.Code)
			assert.Equal(t, "commit failed\n", rec.Body.String())
			if tc.refusing {
				assert.ErrorIs(t, afterErr, tenant.ErrTransactionLost, "no statement runs outside the transaction")
			} else {
				assert.NoError(t, afterErr)
			}
			e.mgr.WaitAfterCommit()
			assert.Zero(t, hooks.Load())
			var names []string
			require.NoError(t, e.admin.QueryRow(context.Background(),
				`SELECT coalesce(array_agg(name ORDER BY name), '{}') FROM "`+a+`".items`).Scan(&names))
			assert.Equal(t, append([]string{}, tc.kept...), names)
			assert.Contains(t, e.logs.String(), "ended or unbound by the handler")

			// The connection is clean for the next request.
			rec = do(tenant.Middleware(e.mgr)(showTenant), "GET", "/", nil, "X-Tenant", a)
			assert.Equal(t, 200, rec.Code)
			assert.True(t, strings.HasPrefix(rec.Body.String(), a+", extensions, pg_temp|"), rec.Body.String())
		})
	}
}

// Run has the same rule: a function that ends the transaction gets an error, never a
// nil that would say its work committed.
func TestRunEndingTheTransactionFails(t *testing.T) {
	a := newTenantName("txr")
	e := newEnv(t, 1, tenant.Config{}, a)
	err := e.mgr.Run(context.Background(), a, func(ctx context.Context) error {
		_, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO items (name) VALUES ('x'); ROLLBACK")
		return err
	})
	assert.ErrorIs(t, err, tenant.ErrTransactionLost)
	assert.ErrorIs(t, err, tenant.ErrCommitFailed)
	assert.Zero(t, e.items(t, a, "x"))
}
