package changes_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"testing/fstest"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/changes"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenanttest"
)

func TestMain(m *testing.M) { os.Exit(tenanttest.Main(m)) }

// A migration tracks the table; the subscriber hears of each row after the commit.
var migrations = fstest.MapFS{
	"001_invoices.sql": {Data: []byte(`CREATE TABLE invoices (id bigserial PRIMARY KEY, total int NOT NULL);
		SELECT tenant_registry.track_changes('invoices');`)},
}

func Example() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{DSN: tenanttest.DatabaseURL(), Migrations: migrations})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_changes"); err != nil {
		panic(err)
	}
	defer func() { _ = mgr.Drop(ctx, "ex_changes") }()

	sub, err := mgr.Subscribe(ctx, changes.Filter{Schema: "ex_changes"})
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	err = mgr.Run(ctx, "ex_changes", func(ctx context.Context) error {
		db := tenantctx.Session(ctx)
		if _, err := db.Exec(ctx, "INSERT INTO invoices (total) VALUES (10), (20)"); err != nil {
			return err
		}
		_, err := db.Exec(ctx, "UPDATE invoices SET total = total + 1 WHERE id = 2")
		return err
	})
	if err != nil {
		panic(err)
	}
	for range 3 {
		fmt.Println(<-sub.C)
	}
	// Output:
	// insert ex_changes.invoices 1
	// insert ex_changes.invoices 2
	// update ex_changes.invoices 2
}
