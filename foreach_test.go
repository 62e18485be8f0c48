package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// ForEach runs the function in each active tenant's own transaction, on a small pool
// so that tenants follow each other on the same backends: each sees only its schema, a
// failing tenant's work is rolled back while the others commit, and a suspended
// tenant is skipped.
func TestManagerForEach(t *testing.T) {
	ctx := context.Background()
	names := []string{"each-a", "each-b", "each-c", "each-d", "each-e"}
	e := newEnvOn(t, testdb.NewDatabase(t), 2, nil, tenant.Config{}, names...)
	require.NoError(t, e.mgr.Suspend(ctx, "each-e"))
	e.pool.Reset()

	res, err := e.mgr.ForEach(ctx, schema.RunOptions{Parallel: 2}, func(ctx context.Context) error {
		db := tenantctx.Session(ctx)
		name := tenantctx.Schema(ctx)
		var seen int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&seen); err != nil {
			return err
		}
		if _, err := db.Exec(ctx, "INSERT INTO items (owner, name) VALUES ($1, $2)", name, fmt.Sprint("seen ", seen)); err != nil {
			return err
		}
		if name == "each-c" {
			return errors.New("refused")
		}
		return nil
	})
	require.Error(t, err)
	var runErr *schema.RunError
	require.ErrorAs(t, err, &runErr)
	assert.Contains(t, res.Failures, "each-c")
	assert.Equal(t, 4, res.Total)
	assert.Equal(t, 3, res.Changed)
	assert.Equal(t, 1, res.Failed)
	for _, name := range []string{"each-a", "each-b", "each-d"} {
		assert.Equal(t, 1, countRow(t, e.pool, `SELECT count(*) FROM "`+name+`".items WHERE owner = $1 AND name = 'seen 0'`, name), name)
		assert.Equal(t, 1, countRow(t, e.pool, `SELECT count(*) FROM "`+name+`".items`), name)
	}
	for _, name := range []string{"each-c", "each-e"} {
		assert.Zero(t, countRow(t, e.pool, `SELECT count(*) FROM "`+name+`".items`), name)
	}
}

// A job runs in every tenant's transaction: each commits on its own, and the Result
// counts them.
func ExampleManager_ForEach() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{DSN: testdb.DatabaseURL(), Migrations: exampleMigrations})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	for _, name := range []string{"foreach-acme", "foreach-globex"} {
		if err := mgr.Provisioner().Ensure(ctx, name); err != nil {
			panic(err)
		}
		defer mgr.Drop(ctx, name)
	}

	res, err := mgr.ForEach(ctx, schema.RunOptions{Namespace: "foreach"}, func(ctx context.Context) error {
		_, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO notes (body) VALUES ('weekly digest sent')")
		return err
	})
	fmt.Println(res.Progress, err)
	// Output: 2/2 done: 2 changed, 0 current, 0 failed, 0 locked <nil>
}
