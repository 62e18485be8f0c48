package tenantsql_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenantsql"
	"github.com/tenantkit/tenant/tenanttest"
)

// A handler written with database/sql runs in the request's tenant and transaction:
// the write is committed before the response, because the handler answered 201.
func ExampleOpen() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{
		DSN:        tenanttest.DatabaseURL(),
		Migrations: migrations,
		Resolver:   middleware.Header("X-Tenant"),
	})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_sql"); err != nil {
		panic(err)
	}
	defer func() { _ = mgr.Drop(ctx, "ex_sql") }()

	db := tenantsql.Open() // one per process, shared by every request and tenant
	addNote := func(w http.ResponseWriter, r *http.Request) {
		_, err := db.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES ($1)", "hello")
		if err != nil {
			http.Error(w, "could not write", http.StatusInternalServerError)
			return
		}
		var n int
		_ = db.QueryRowContext(r.Context(), "SELECT count(*) FROM notes").Scan(&n)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s has %d notes", tenantctx.Schema(r.Context()), n)
	}

	req := httptest.NewRequest(http.MethodPost, "/notes", nil)
	req.Header.Set("X-Tenant", "ex_sql")
	rec := httptest.NewRecorder()
	tenant.Middleware(mgr)(http.HandlerFunc(addNote)).ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())

	// Without the request's context there is no tenant, and nothing runs.
	_, err = db.Exec("DELETE FROM notes")
	fmt.Println(errors.Is(err, tenantctx.ErrNoSession))
	// Output:
	// 201 ex_sql has 2 notes
	// true
}

// A database/sql transaction is a savepoint of the request's transaction: rolling it
// back undoes its writes only. Manager.Run gives jobs the same lifecycle as requests.
func ExampleOpen_transaction() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{DSN: tenanttest.DatabaseURL(), Migrations: migrations})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_sql_tx"); err != nil {
		panic(err)
	}
	defer func() { _ = mgr.Drop(ctx, "ex_sql_tx") }()

	db := tenantsql.Open()
	err = mgr.Run(ctx, "ex_sql_tx", func(ctx context.Context) error {
		if _, err := db.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('kept')"); err != nil {
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('undone')"); err != nil {
			return err
		}
		if err := tx.Rollback(); err != nil {
			return err
		}
		rows, err := db.QueryContext(ctx, "SELECT body FROM notes ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var body string
			if err := rows.Scan(&body); err != nil {
				return err
			}
			fmt.Println(body)
		}
		return rows.Err()
	})
	fmt.Println("run:", err)
	// Output:
	// ex_sql_tx
	// kept
	// run: <nil>
}
