package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// sharedMigrations make shared.plans, which tenants read and must not write by
// accident, and a shared "items" table that a tenant's own items must never be
// confused with.
var sharedMigrations = fstest.MapFS{
	"001_plans.sql": {Data: []byte(`CREATE TABLE plans (id text PRIMARY KEY, seats int NOT NULL);
		INSERT INTO plans VALUES ('free', 1), ('pro', 10);
		CREATE TABLE items (name text)`)},
}

// Shared tables: migrated before any tenant, read qualified from a tenant's request,
// never on its search_path (its own "items" stays its own), and written from it only
// after AllowSharedWrites; jobs outside a tenant's transaction write them freely.
// Pools of 2 connections, so requests of both tenants share backends.
func TestSharedTables(t *testing.T) {
	ctx := context.Background()
	a, b := "shared-a", "shared-b"
	e := newEnvOn(t, testdb.NewDatabase(t), 2, nil, tenant.Config{Resolver: byHeader, SharedMigrations: sharedMigrations}, a, b)
	_, err := e.pool.Exec(ctx, `INSERT INTO "shared-a".items (name) VALUES ('x'), ('y')`)
	require.NoError(t, err)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /seats", func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		var seats, items int
		if err := db.QueryRow(r.Context(), "SELECT (SELECT seats FROM shared.plans WHERE id = 'pro'), (SELECT count(*) FROM items)").Scan(&seats, &items); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d|%d", seats, items)
	})
	mux.HandleFunc("POST /plans", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("allow") == "1" {
			if err := tenant.AllowSharedWrites(r.Context()); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "UPDATE shared.plans SET seats = seats + 1 WHERE id = 'pro'")
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			http.Error(w, pgErr.Code, http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	h := tenant.Middleware(e.mgr)(mux)

	for _, tc := range []struct{ tenant, want string }{{a, "10|2"}, {b, "10|0"}, {a, "10|2"}} {
		r := do(h, "GET", "/seats", nil, "X-Tenant", tc.tenant)
		assert.Equal(t, 200, r.Code)
		assert.Equal(t, tc.want, r.Body.String(), "shared plans read qualified; items are the tenant's own")
	}

	r := do(h, "POST", "/plans", nil, "X-Tenant", a)
	assert.Equal(t, 403, r.Code)
	assert.Equal(t, "42501\n", r.Body.String(), "a tenant's transaction may not write a shared table by accident")
	assert.Equal(t, 10, e.countIn(t, `SELECT seats FROM shared.plans WHERE id = 'pro'`))
	r = do(h, "POST", "/plans?allow=1", nil, "X-Tenant", b)
	assert.Equal(t, 201, r.Code, r.Body.String())
	assert.Equal(t, 11, e.countIn(t, `SELECT seats FROM shared.plans WHERE id = 'pro'`))
	r = do(h, "POST", "/plans", nil, "X-Tenant", b)
	assert.Equal(t, 403, r.Code, "the permission ended with the transaction that took it, on the same backend")
	assert.Equal(t, "11|0", do(h, "GET", "/seats", nil, "X-Tenant", b).Body.String())

	// Outside a tenant's transaction (a job, the admin pool), writes go through.
	_, err = e.pool.Exec(ctx, "INSERT INTO shared.plans VALUES ('team', 5)")
	require.NoError(t, err)
	_, err = e.pool.Exec(ctx, "TRUNCATE shared.items")
	require.NoError(t, err)

	// Run is a tenant's transaction too.
	err = e.mgr.Run(ctx, a, func(ctx context.Context) error {
		_, err := tenantctx.Session(ctx).Exec(ctx, "DELETE FROM shared.plans WHERE id = 'team'")
		return err
	})
	assert.Error(t, err)
	assert.Equal(t, 1, e.countIn(t, `SELECT count(*) FROM shared.plans WHERE id = 'team'`))

	// No tenant may be named like the shared schema.
	assert.ErrorIs(t, e.mgr.Provisioner().Validate(schema.SharedSchema), schema.ErrReserved)
	assert.ErrorIs(t, e.mgr.Provisioner().Ensure(ctx, schema.SharedSchema), schema.ErrReserved)
}

// A later shared migration is applied by MigrateAll, and the tables it makes are
// guarded in the same transaction; a migration run again changes nothing.
func TestSharedMigrationsFollowDeploys(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewDatabase(t)
	e := newEnvOn(t, url, 2, nil, tenant.Config{Resolver: byHeader, SharedMigrations: sharedMigrations}, "shared-c")
	_, err := e.mgr.Provisioner().MigrateAll(ctx, schema.RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, e.countIn(t, `SELECT count(*) FROM shared.plans`))

	next := fstest.MapFS{"001_plans.sql": sharedMigrations["001_plans.sql"],
		"002_domains.sql": {Data: []byte(`CREATE TABLE domains (host text PRIMARY KEY, tenant text NOT NULL)`)}}
	p, err := schema.NewProvisioner(e.pool, schema.Config{Migrations: appMigrations, SharedMigrations: next})
	require.NoError(t, err)
	res, err := p.MigrateAll(ctx, schema.RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Current)
	assert.Equal(t, 2, e.countIn(t, `SELECT count(*) FROM shared.plans`), "001 did not run again")
	assert.Equal(t, 3, e.countIn(t, `SELECT count(*) FROM pg_trigger WHERE tgname = 'tenant_shared_guard'`),
		"plans, items and the new domains are guarded")
	err = e.mgr.Run(ctx, "shared-c", func(ctx context.Context) error {
		_, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO shared.domains VALUES ('c.example.com', 'shared-c')")
		return err
	})
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "42501", pgErr.Code)
}

// countIn runs a counting query on the env's own pool (its own database).
func (e *env) countIn(t *testing.T, sql string) int { return countRow(t, e.pool, sql) }

// A sign-up writes the shared users table, which every other handler only reads.
func ExampleAllowSharedWrites() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{
		DSN:        testdb.DatabaseURL(),
		Migrations: exampleMigrations,
		SharedMigrations: fstest.MapFS{
			"001_users.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS users (email text PRIMARY KEY, tenant text NOT NULL)")},
		},
	})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_signup"); err != nil {
		panic(err)
	}
	defer mgr.Drop(ctx, "ex_signup")
	signUp := func(ctx context.Context, allow bool) error {
		if allow {
			if err := tenant.AllowSharedWrites(ctx); err != nil {
				return err
			}
		}
		_, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO shared.users VALUES ($1, $2) ON CONFLICT DO NOTHING",
			"ada@example.com", tenantctx.Schema(ctx))
		return err
	}

	err = mgr.Run(ctx, "ex_signup", func(ctx context.Context) error { return signUp(ctx, false) })
	var pgErr *pgconn.PgError
	fmt.Println(errors.As(err, &pgErr) && pgErr.Code == "42501")
	err = mgr.Run(ctx, "ex_signup", func(ctx context.Context) error { return signUp(ctx, true) })
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}
