package tenant_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/tenantctx"
)

// Config.Spares reaches the Provisioner: a tenant created through the Manager is a
// spare renamed, served like any other (a current_schema() default says its name), and
// Close stops the refill.
func TestManagerSpares(t *testing.T) {
	ctx := context.Background()
	e := newEnvOn(t, testdb.NewDatabase(t), 4, nil, tenant.Config{Spares: 1})
	prov := e.mgr.Provisioner()
	require.NoError(t, prov.FillStock(ctx))
	var spareOID uint32
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT schema_oid FROM tenant_registry.tenants WHERE state = 'spare'`).Scan(&spareOID))

	name := newTenantName("stock")
	require.NoError(t, prov.Create(ctx, name))
	tn, err := prov.Lookup(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, spareOID, tn.OID, "the spare, renamed")
	var owner string
	require.NoError(t, e.mgr.Run(ctx, name, func(ctx context.Context) error {
		s := tenantctx.Session(ctx)
		return s.QueryRow(ctx, `INSERT INTO items (name) VALUES ('first') RETURNING owner`).Scan(&owner)
	}))
	assert.Equal(t, name, owner)
	e.mgr.Close() // the refill the take started is stopped and waited for
}
