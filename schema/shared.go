package schema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SharedSchema holds the tables that belong to no tenant (users, plans, domains),
// made by Config.SharedMigrations. It is never on a tenant's search_path, so its
// tables never shadow a tenant's: requests name them qualified ("shared.users").
// With shared migrations configured, no tenant may take the name.
const SharedSchema = "shared"

// sharedLock is the advisory lock (second key) that serializes shared migrations.
const sharedLock = 1

// sharedGuard is the trigger function that refuses writes to a shared table from a
// tenant's transaction (tenant.schema set) unless the transaction allowed them
// (tenant.shared_writes on, as AllowSharedWrites sets): a handler that names a shared
// table by mistake fails instead of changing every tenant's data. Migrations, jobs
// and administration, outside a tenant's transaction, write freely.
const sharedGuard = `CREATE OR REPLACE FUNCTION ` + SharedSchema + `.tenant_shared_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF coalesce(current_setting('tenant.schema', true), '') <> ''
		AND coalesce(current_setting('tenant.shared_writes', true), '') <> 'on' THEN
		RAISE EXCEPTION 'shared table %.% written from tenant %''s transaction', TG_TABLE_SCHEMA, TG_TABLE_NAME,
			current_setting('tenant.schema', true)
			USING ERRCODE = '42501', HINT = 'call tenant.AllowSharedWrites in the request first, if it is meant';
	END IF;
	RETURN NULL;
END $$`

// migrateShared applies the pending shared migrations to SharedSchema, in one
// transaction under its lock, then guards every table in it. Without shared
// migrations it does nothing.
func (p *Provisioner) migrateShared(ctx context.Context) error {
	if len(p.sharedMigrations) == 0 {
		return nil
	}
	err := p.retry(ctx, "shared migrations", SharedSchema, func() error {
		return inTx(ctx, p.db, func(tx pgx.Tx) error { return p.migrateSharedTx(ctx, tx) })
	})
	if err != nil {
		return fmt.Errorf("schema: shared migrations: %w", err)
	}
	return nil
}

func (p *Provisioner) migrateSharedTx(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", execMode, lockKey, sharedLock); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+SharedSchema+"; CREATE TABLE IF NOT EXISTS "+versionTableColumns(SharedSchema)); err != nil {
		return err
	}
	done, top, err := appliedIn(ctx, tx, SharedSchema)
	if err != nil {
		return err
	}
	pending, err := pendingOf(p.sharedMigrations, done, top, SharedSchema)
	if err != nil || len(pending) == 0 {
		return err
	}
	if err := apply(ctx, tx, SharedSchema, pending); err != nil {
		return err
	}
	return guardShared(ctx, tx)
}

// guardShared installs the write guard on every table of SharedSchema that lacks it
// (the version table excepted): tables a shared migration made are guarded in the
// same transaction.
func guardShared(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, sharedGuard); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT c.relname::text FROM pg_catalog.pg_class c
		WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> $2 AND c.relispartition = false
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = 'tenant_shared_guard')`,
		execMode, SharedSchema, VersionTable)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, name := range tables {
		if _, err := tx.Exec(ctx, "CREATE TRIGGER tenant_shared_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "+
			pgx.Identifier{SharedSchema, name}.Sanitize()+" FOR EACH STATEMENT EXECUTE FUNCTION "+SharedSchema+".tenant_shared_guard()"); err != nil {
			return err
		}
	}
	return nil
}
