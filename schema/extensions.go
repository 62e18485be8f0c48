package schema

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrExtensionName is returned by NewProvisioner for an extension name that is not a
// plain lower-case identifier.
var ErrExtensionName = errors.New("invalid extension name")

// ErrExtensions is wrapped when the shared extensions cannot be provisioned by this
// role; the error text names the SQL a superuser must run.
var ErrExtensions = errors.New("extensions are not provisioned")

var extensionName = regexp.MustCompile(`\A[a-z_][a-z0-9_]{0,62}\z`)

// extensionsLock is the advisory lock (second key) that serializes extension creation.
const extensionsLock = 0

// EnsureExtensions makes the shared "extensions" schema and the configured extensions
// exist, once per Provisioner: after a success it costs nothing. When they already
// exist no DDL runs, so a role without CREATE rights works once a superuser has
// installed them. A role that may not create them gets an error wrapping
// ErrExtensions that names the SQL a superuser must run.
func (p *Provisioner) EnsureExtensions(ctx context.Context) error {
	p.extMu.Lock()
	defer p.extMu.Unlock()
	if p.extReady || len(p.extensions) == 0 {
		return nil
	}
	err := p.retry(ctx, "extensions", ExtensionsSchema, func() error {
		return inTx(ctx, p.db, func(tx pgx.Tx) error { return p.ensureExtensionsTx(ctx, tx) })
	})
	if err != nil {
		return err
	}
	p.extReady = true
	return nil
}

func (p *Provisioner) ensureExtensionsTx(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", lockKey, extensionsLock); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT e.extname::text, n.nspname::text FROM pg_catalog.pg_extension e
		JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = ANY($1)`, p.extensions)
	if err != nil {
		return err
	}
	installed := map[string]string{}
	var ext, nsp string
	if _, err := pgx.ForEachRow(rows, []any{&ext, &nsp}, func() error { installed[ext] = nsp; return nil }); err != nil {
		return err
	}
	var missing []string
	for _, e := range p.extensions {
		switch where, ok := installed[e]; {
		case !ok:
			missing = append(missing, e)
		case where != ExtensionsSchema:
			return fmt.Errorf("schema: %w: extension %q is installed in schema %q, where tenants do not see it; "+
				"a superuser must run: ALTER EXTENSION %s SET SCHEMA %s",
				ErrExtensions, e, where, pgx.Identifier{e}.Sanitize(), ExtensionsSchema)
		}
	}
	if len(missing) == 0 { // all present in "extensions", so the schema exists too
		return nil
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ExtensionsSchema); err != nil {
		return p.privilegeHint(err, missing)
	}
	for _, e := range missing {
		if _, err := tx.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+pgx.Identifier{e}.Sanitize()+" SCHEMA "+ExtensionsSchema); err != nil {
			return p.privilegeHint(err, missing)
		}
	}
	return nil
}

// privilegeHint turns "permission denied" into an error that says what to run.
func (p *Provisioner) privilegeHint(err error, missing []string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		return err
	}
	var sql strings.Builder
	sql.WriteString("CREATE SCHEMA IF NOT EXISTS " + ExtensionsSchema + ";")
	for _, e := range missing {
		sql.WriteString(" CREATE EXTENSION IF NOT EXISTS " + pgx.Identifier{e}.Sanitize() + " SCHEMA " + ExtensionsSchema + ";")
	}
	sql.WriteString(" GRANT USAGE ON SCHEMA " + ExtensionsSchema + " TO PUBLIC;")
	return fmt.Errorf("schema: %w: this role may not create them (%s); a superuser must run: %s",
		ErrExtensions, pgErr.Message, sql.String())
}
