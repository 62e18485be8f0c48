package admin_test

import (
	"context"
	"fmt"
	"os"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/admin"
	"github.com/tenantkit/tenant/internal/testdb"
)

// An application's main hands its tenants, migrate and sql command lines to admin.
func ExampleCommand() {
	ctx := context.Background()
	cmd := admin.Command{Stdout: os.Stdout, Stderr: os.Stdout, Open: func(ctx context.Context) (*tenant.Manager, func(), error) {
		mgr, err := tenant.New(ctx, tenant.Config{DSN: testdb.DatabaseURL(), Migrations: notes})
		if err != nil {
			return nil, nil, err
		}
		return mgr, mgr.Close, nil
	}}
	for _, args := range [][]string{
		{"tenants", "create", "example-acme"},
		{"sql", "example-acme", "INSERT INTO notes (body) VALUES ('hello')"},
		{"sql", "example-acme", "SELECT body FROM notes"},
		{"tenants", "list", "--namespace", "example"},
		{"tenants", "drop", "example-acme"},
		{"tenants", "create", "Robert'); DROP TABLE students;--"},
	} {
		if err := cmd.Run(ctx, args); err != nil {
			fmt.Println("error:", err)
		}
	}
	// Output:
	// created example-acme
	// INSERT 0 1
	// body
	// hello
	// example-acme
	// dropped example-acme
	// error: invalid schema name "Robert'); DROP TABLE students;--": name may only contain a-z, 0-9, '_' and '-'
}
