package schema_test

import (
	"context"
	"errors"
	"fmt"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

func ExampleValidate() {
	for _, name := range []string{"acme", "municipalities-new_york", "pg_catalog", "Acme", "public", "a--b"} {
		var invalid *schema.NameError
		if err := schema.Validate(name); errors.As(err, &invalid) {
			fmt.Printf("%-24s %v\n", name, invalid.Rule)
			continue
		}
		fmt.Printf("%-24s ok\n", name)
	}
	// Output:
	// acme                     ok
	// municipalities-new_york  ok
	// pg_catalog               name starts with pg_ (reserved by PostgreSQL)
	// Acme                     name may only contain a-z, 0-9, '_' and '-'
	// public                   name is reserved
	// a--b                     name contains '--' (an SQL comment)
}

func ExampleFromApplicationID() {
	name, err := schema.FromApplicationID("municipalities/new-york")
	fmt.Println(name, err)
	// Output: municipalities-new_york <nil>
}

// A Provisioner gives each tenant its schema, with the shared extensions and the
// application's migrations, the first time it is needed.
func ExampleProvisioner_Ensure() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDatabase())
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	migrations := fstest.MapFS{ // usually an embed.FS of SQL files
		"001_documents.sql": {Data: []byte("CREATE TABLE documents (id serial PRIMARY KEY, title hstore)")},
	}
	p, err := schema.NewProvisioner(pool, schema.Config{
		Extensions: []string{"hstore"}, // created once, in the shared "extensions" schema
		Migrations: migrations,
	})
	if err != nil {
		panic(err)
	}
	for _, tenant := range []string{"example-acme", "example-globex", "example-acme"} {
		if err := p.Ensure(ctx, tenant); err != nil {
			panic(err)
		}
	}
	tenants, _ := p.List(ctx, "example")
	fmt.Println(tenants)

	err = p.Ensure(ctx, "Robert'); DROP TABLE students;--")
	fmt.Println(errors.Is(err, schema.ErrInvalidName))

	for _, tenant := range tenants {
		_ = p.Drop(ctx, tenant)
	}
	// Output:
	// [example-acme example-globex]
	// true
}

// exampleDatabase is the test package's own database; an application passes its DSN.
func exampleDatabase() string { return testdb.DatabaseURL() }

// At sign-up a tenant's name must be new: Create refuses one that exists, changing
// nothing in it; Validate checks the name first, with the application's reserved
// names, without a query.
func ExampleProvisioner_Create() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDatabase())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	p, err := schema.NewProvisioner(pool, schema.Config{Reserved: []string{"admin"}})
	if err != nil {
		panic(err)
	}
	defer p.Drop(ctx, "example_initech")

	for _, name := range []string{"admin", "example_initech", "example_initech"} {
		if err := p.Validate(name); err != nil {
			fmt.Println(name, "refused:", errors.Is(err, schema.ErrReserved))
			continue
		}
		err := p.Create(ctx, name)
		fmt.Println(name, "taken already:", errors.Is(err, schema.ErrExists))
	}
	// Output:
	// admin refused: true
	// example_initech taken already: false
	// example_initech taken already: true
}

// MigrateAll brings every tenant (here, of one namespace) to the latest migration:
// one query finds what is pending, the pending tenants run in parallel, and a failure
// in one is reported while the others go on.
func ExampleProvisioner_MigrateAll() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDatabase())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	v1 := fstest.MapFS{"001_notes.sql": {Data: []byte("CREATE TABLE notes (id serial PRIMARY KEY, body text)")}}
	p, _ := schema.NewProvisioner(pool, schema.Config{Migrations: v1})
	for _, tenant := range []string{"migrateall-a", "migrateall-b", "migrateall-c"} {
		_ = p.Ensure(ctx, tenant)
		defer p.Drop(ctx, tenant)
	}

	v2 := fstest.MapFS{"001_notes.sql": v1["001_notes.sql"],
		"002_pinned.sql": {Data: []byte("ALTER TABLE notes ADD COLUMN pinned bool NOT NULL DEFAULT false")}}
	p, _ = schema.NewProvisioner(pool, schema.Config{Migrations: v2})
	res, err := p.MigrateAll(ctx, schema.RunOptions{Namespace: "migrateall", Parallel: 2})
	fmt.Println(res.Progress, err)

	res, err = p.MigrateAll(ctx, schema.RunOptions{Namespace: "migrateall"})
	fmt.Println(res.Progress, err)
	// Output:
	// 3/3 done: 3 changed, 0 current, 0 failed, 0 locked <nil>
	// 3/3 done: 0 changed, 3 current, 0 failed, 0 locked <nil>
}

// A suspended tenant keeps its schema but is not served: Lookup, which admission
// asks, answers ErrSuspended until it is resumed.
func ExampleProvisioner_Suspend() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDatabase())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	p, _ := schema.NewProvisioner(pool, schema.Config{})
	_ = p.Ensure(ctx, "example-hooli")
	defer p.Drop(ctx, "example-hooli")
	_ = p.SetMetadata(ctx, "example-hooli", map[string]string{"plan": "trial"})

	_ = p.Suspend(ctx, "example-hooli")
	_, err = p.Lookup(ctx, "example-hooli")
	info, _ := p.Info(ctx, "example-hooli")
	fmt.Println(errors.Is(err, schema.ErrSuspended), info.State, string(info.Metadata))

	_ = p.Resume(ctx, "example-hooli")
	_, err = p.Lookup(ctx, "example-hooli")
	fmt.Println(err)
	// Output:
	// true suspended {"plan": "trial"}
	// <nil>
}
