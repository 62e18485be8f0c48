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
