package schema

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrExtensionName is returned by NewProvisioner for an extension name that is not a
// plain lower-case identifier.
var ErrExtensionName = errors.New("invalid extension name")

// ErrExtensions is wrapped when the shared schemas (extensions, registry) cannot be
// provisioned by this role; the error text names the SQL a superuser must run.
var ErrExtensions = errors.New("extensions are not provisioned")

var extensionName = regexp.MustCompile(`\A[a-z_][a-z0-9_]{0,62}\z`)

// extensionsLock is the advisory lock (second key) that serializes extension creation.
const extensionsLock = 0

// ensureShared makes the shared schemas exist, once per Provisioner: the
// "extensions" schema with the configured extensions, and the tenant registry. After a
// success it costs nothing. When they already exist no DDL runs, so a role without
// CREATE rights works once a superuser has made them. A role that may not create them
// gets an error wrapping ErrExtensions that names the SQL a superuser must run.
func (p *Provisioner) ensureShared(ctx context.Context) error {
	if p.sharedReady.Load() {
		return nil
	}
	ch := p.shared.DoChan("shared", func() (any, error) {
		// Shared by every caller at the time, so not bound to one caller's context;
		// each waits for it only as long as its own allows. No lock is held across I/O.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedTimeout)
		defer cancel()
		err := p.retry(ctx, "extensions", ExtensionsSchema, func() error {
			return inTx(ctx, p.db, func(tx pgx.Tx) error { return p.ensureSharedTx(ctx, tx) })
		})
		if err == nil {
			err = p.migrateShared(ctx)
		}
		if err == nil {
			p.sharedReady.Store(true)
		}
		return nil, err
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return fmt.Errorf("schema: waiting for the shared schemas: %w", ctx.Err())
	}
}

// sharedTimeout bounds the making of the shared schemas, which may outlive the caller
// that started it.
const sharedTimeout = time.Minute

// ensureSharedTx looks before it creates: when everything is there it runs no DDL, and
// when the role may not create what is missing, the error names all of it.
func (p *Provisioner) ensureSharedTx(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", execMode, lockKey, extensionsLock); err != nil {
		return err
	}
	var current bool
	var role string
	// current: the registry exists with what this release keeps (an earlier release's
	// lacks columns or change signals' functions, which createRegistrySQL adds).
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
			WHERE attrelid = to_regclass($1) AND attname = 'metadata' AND NOT attisdropped)
		AND pg_catalog.obj_description(to_regprocedure($2), 'pg_proc') IS NOT DISTINCT FROM $3, current_user`,
		execMode, registryTable, RegistrySchema+".notify_changes()", changesVersion).Scan(&current, &role); err != nil {
		return err
	}
	if p.roles != nil {
		if err := p.ensureGroup(ctx, tx); err != nil {
			return err
		}
	}
	missing, err := p.missingExtensions(ctx, tx)
	if err != nil || (current && len(missing) == 0) {
		return err
	}
	hint := func(err error) error { return privilegeHint(err, sharedSQL(!current, missing, role)) }
	if !current {
		if _, err := tx.Exec(ctx, createRegistrySQL); err != nil { // IF NOT EXISTS throughout: it upgrades too
			return hint(err)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ExtensionsSchema); err != nil {
		return hint(err)
	}
	for _, e := range missing {
		if _, err := tx.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+pgx.Identifier{e}.Sanitize()+" SCHEMA "+ExtensionsSchema); err != nil {
			return hint(err)
		}
	}
	return nil
}

// missingExtensions returns the configured extensions not installed yet; one
// installed in another schema is an error that says how to move it.
func (p *Provisioner) missingExtensions(ctx context.Context, tx pgx.Tx) ([]string, error) {
	if len(p.extensions) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT e.extname::text, n.nspname::text FROM pg_catalog.pg_extension e
		JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = ANY($1)`, execMode, p.extensions)
	if err != nil {
		return nil, err
	}
	installed := map[string]string{}
	var ext, nsp string
	if _, err := pgx.ForEachRow(rows, []any{&ext, &nsp}, func() error { installed[ext] = nsp; return nil }); err != nil {
		return nil, err
	}
	var missing []string
	for _, e := range p.extensions {
		switch where, ok := installed[e]; {
		case !ok:
			missing = append(missing, e)
		case where != ExtensionsSchema:
			return nil, fmt.Errorf("schema: %w: extension %q is installed in schema %q, where tenants do not see it; "+
				"a superuser must run: ALTER EXTENSION %s SET SCHEMA %s",
				ErrExtensions, e, where, pgx.Identifier{e}.Sanitize(), ExtensionsSchema)
		}
	}
	return missing, nil
}

// sharedSQL is what a superuser runs to make the missing shared schemas, leaving the
// registry to role, which writes it when it provisions tenants.
func sharedSQL(registry bool, missing []string, role string) string {
	var sql strings.Builder
	if registry {
		owner := pgx.Identifier{role}.Sanitize()
		sql.WriteString(createRegistrySQL + "; ALTER SCHEMA " + RegistrySchema + " OWNER TO " + owner +
			"; ALTER TABLE " + registryTable + " OWNER TO " + owner + ";")
	}
	if len(missing) > 0 {
		sql.WriteString(" CREATE SCHEMA IF NOT EXISTS " + ExtensionsSchema + ";")
		for _, e := range missing {
			sql.WriteString(" CREATE EXTENSION IF NOT EXISTS " + pgx.Identifier{e}.Sanitize() + " SCHEMA " + ExtensionsSchema + ";")
		}
		sql.WriteString(" GRANT USAGE ON SCHEMA " + ExtensionsSchema + " TO PUBLIC;")
	}
	return strings.TrimSpace(sql.String())
}

// privilegeHint turns "permission denied" into an error that says what to run.
func privilegeHint(err error, sql string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		return err
	}
	return fmt.Errorf("schema: %w: this role may not create them (%s); a superuser must run: %s",
		ErrExtensions, pgErr.Message, sql)
}
