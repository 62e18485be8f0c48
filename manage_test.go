package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// Manager.Drop drops the tenant and forgets it in admission: the next request sees it
// gone even when its handler sends no query (which would have found the schema
// missing by itself). Under AutoCreate that request provisions it again.
func TestManagerDrop(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		admission tenant.Admission
		code      int
		schemas   int // of that name after the request
	}{
		{"ExistingOnly", tenant.ExistingOnly(), 404, 0},
		{"AutoCreate", tenant.AutoCreate(nil), 200, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1, tenant.Config{Resolver: byHeader, Admission: tc.admission})
			a := newTenantName("mdrop")
			require.NoError(t, e.mgr.Provisioner().Ensure(ctx, a))
			t.Cleanup(func() { _, _ = e.admin.Exec(ctx, `DROP SCHEMA IF EXISTS "`+a+`" CASCADE`) })
			noQuery := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(tenantctx.Schema(r.Context())))
			}))
			require.Equal(t, 200, do(noQuery, "GET", "/", nil, "X-Tenant", a).Code) // admission remembers it

			require.NoError(t, e.mgr.Drop(ctx, a))
			assert.Zero(t, e.count(t, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, a), "the schema is gone")
			assert.Equal(t, tc.code, do(noQuery, "GET", "/", nil, "X-Tenant", a).Code)
			assert.Equal(t, tc.schemas, e.count(t, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, a),
				"provisioned again only under AutoCreate")
		})
	}
}

// Manager.Drop reports what Provisioner.Drop reports; a bad name changes nothing.
func TestManagerDropErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader})
	before := e.count(t, `SELECT count(*) FROM pg_namespace`)
	tests := []struct {
		name string
		err  error
	}{
		{newTenantName("nosuch"), schema.ErrNotFound},
		{"public", schema.ErrInvalidName},
		{"Acme", schema.ErrInvalidName},
		{"", schema.ErrInvalidName},
	}
	for _, tt := range tests {
		assert.ErrorIs(t, e.mgr.Drop(ctx, tt.name), tt.err, "%q", tt.name)
	}
	assert.Equal(t, before, e.count(t, `SELECT count(*) FROM pg_namespace`))
}

// A tenant-admin command drops a tenant; the Manager's requests see it gone at once.
func ExampleManager_Drop() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{
		DSN:        testdb.DatabaseURL(),
		Resolver:   middleware.PathPrefix("/t"),
		Migrations: exampleMigrations,
	})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_umbrella"); err != nil {
		panic(err)
	}
	app := tenant.Middleware(mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello ", tenantctx.Schema(r.Context()))
	}))

	send(app, "GET", "localhost", "/t/ex_umbrella/", "")
	fmt.Println(mgr.Drop(ctx, "ex_umbrella"))
	send(app, "GET", "localhost", "/t/ex_umbrella/", "")
	fmt.Println(errors.Is(mgr.Drop(ctx, "ex_umbrella"), schema.ErrNotFound))
	// Output:
	// 200 hello ex_umbrella
	// <nil>
	// 404 unknown tenant
	// true
}
