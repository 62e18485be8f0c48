package tenant_test

import (
	"context"
	"errors"
	"net/http"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/tenantctx"
)

// A statement that fails aborts the request's transaction (PostgreSQL refuses every
// later statement and the COMMIT), so a handler that swallows the error and answers
// 200 gets 500 "commit failed" instead: the client never sees a 2xx for lost work.
// A statement that may fail on purpose (insert, or keep the existing row) goes in a
// savepoint, Session.Begin: rolling it back undoes the failure and the request
// commits.
func Example_savepoint() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{
		DSN:        testdb.DatabaseURL(),
		Resolver:   middleware.Header("X-Tenant"),
		Migrations: fstest.MapFS{"001_tags.sql": {Data: []byte("CREATE TABLE tags (name text PRIMARY KEY)")}},
	})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_savepoint"); err != nil {
		panic(err)
	}
	defer mgr.Drop(ctx, "ex_savepoint")

	swallowed := func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		_, _ = db.Exec(r.Context(), "INSERT INTO tags VALUES ('go')") // a duplicate: the transaction is aborted
		_, _ = w.Write([]byte("tagged"))
	}
	inSavepoint := func(w http.ResponseWriter, r *http.Request) {
		sp, err := tenantctx.Session(r.Context()).Begin(r.Context())
		if err != nil {
			http.Error(w, "could not tag", http.StatusInternalServerError)
			return
		}
		_, err = sp.Exec(r.Context(), "INSERT INTO tags VALUES ('go')")
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "23505": // already tagged: fine
			err = sp.Rollback(r.Context()) // back to before the insert; the transaction goes on
		case err == nil:
			err = sp.Commit(r.Context()) // RELEASE SAVEPOINT
		}
		if err != nil {
			http.Error(w, "could not tag", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("tagged"))
	}

	h := tenant.Middleware(mgr)
	for _, handler := range []http.HandlerFunc{inSavepoint, swallowed, inSavepoint} {
		sendAs(h(handler), "ex_savepoint")
	}
	// Output:
	// 200 tagged
	// 500 commit failed
	// 200 tagged
}

// sendAs sends a POST for the tenant and prints the answer.
func sendAs(h http.Handler, tenantName string) {
	send(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("X-Tenant", tenantName)
		h.ServeHTTP(w, r)
	}), "POST", "localhost", "/", "")
}
