// Package roleprobe has no code, only tests: they establish, against a real PostgreSQL
// and a real PgBouncer, what SQL an attacker runs on a tenant request's connection can
// and cannot do under each way of making PostgreSQL itself enforce tenant isolation
// (a shared login role with SET LOCAL ROLE, one-way variants of it, one login role per
// tenant). Every claim of docs/security.md names the test that checks it; each case
// asserts the exact outcome: success with the value read, or the SQLSTATE.
//
// Roles are cluster-wide, so every test makes its own with names unique to the run
// (tenant_probe_<random>_...) and drops them when it ends; roles left by a killed run
// are dropped by the next one.
package roleprobe
