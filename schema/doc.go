// Package schema validates tenant schema names and provisions tenant schemas:
// creation, shared extensions, SQL migrations, listing and dropping.
//
// A tenant is a PostgreSQL schema that this package provisioned. Its name is checked
// by Validate before any SQL is built (and quoted with pgx.Identifier anyway): only
// a-z, 0-9, '_' and '-', at most 63 bytes, not starting with a digit or "pg_", no
// "--", not reserved.
//
// A Provisioner makes a tenant ready in one transaction under an advisory lock keyed by
// the schema name, so any number of goroutines and processes may ask for the same new
// tenant at once. Each verb says what it guarantees: Ensure (the tenant exists and is
// migrated, whatever it was before), Create (a new tenant, or ErrExists), Migrate (an
// existing tenant is migrated, or ErrNotFound), Drop, Lookup, List, Suspend and
// Resume, and Adopt for schemas made before tenants were registered:
//
//	p, err := schema.NewProvisioner(pool, schema.Config{Migrations: migrationsFS})
//	err = p.Ensure(ctx, "acme") // shared schemas once, then the tenant's schema and migrations
//
// Migrations run with search_path set to the tenant's schema and the shared
// "extensions" schema (never public), and are recorded in the tenant's
// tenant_migrations table. MigrateAll brings every tenant up to date, and ForEach
// calls a function for each: planned by one query over the registry, in parallel,
// with progress reports, failures collected while the rest go on, and clean
// interrupts.
package schema
