// Package schema validates tenant schema names and provisions tenant schemas:
// creation, shared extensions, SQL migrations, listing and dropping.
//
// A tenant is a PostgreSQL schema. Its name is checked by Validate before any SQL is
// built (and quoted with pgx.Identifier anyway): only a-z, 0-9, '_' and '-', at most
// 63 bytes, not starting with a digit or "pg_", no "--", not reserved.
//
// A Provisioner makes a tenant ready in one transaction under an advisory lock keyed by
// the schema name, so any number of goroutines and processes may ask for the same new
// tenant at once:
//
//	p, err := schema.NewProvisioner(pool, schema.Config{Migrations: migrationsFS})
//	err = p.Ensure(ctx, "acme") // extensions, schema, pending migrations; cached after
//
// Migrations run with search_path set to the tenant's schema and the shared
// "extensions" schema (never public), and are recorded in the tenant's
// tenant_migrations table.
package schema
