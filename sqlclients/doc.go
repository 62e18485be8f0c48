// Package sqlclients holds the tests of tenantsql with the database/sql clients Go
// applications use (sqlx, bun, gorm): each reads, writes and rolls back through
// tenant.Middleware against PostgreSQL. It is a module of its own so that these
// clients stay out of the library's go.mod.
package sqlclients
