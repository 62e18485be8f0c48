package schema

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// RegistrySchema holds the registry of the tenants this package provisioned. It is
// reserved, and never on a tenant's search_path.
const RegistrySchema = "tenant_registry"

// ErrForeign is returned for a schema that exists but was not provisioned as a tenant
// (an application's own schema, another program's): it is never served, migrated,
// listed, dropped or taken over.
var ErrForeign = errors.New("schema exists but is not a tenant")

// Tenant is a registered tenant schema.
type Tenant struct {
	Name string
	// OID is the schema's: a tenant dropped and provisioned again under the same name
	// has another, so nothing cached for the old schema (statement types, the version
	// marker) is taken for the new one.
	OID uint32
	// Version is the highest migration applied to the schema, 0 before any.
	Version int64
}

// registryTable is where a tenant is marked as ours, in the transaction that creates
// its schema. The schema's OID makes the mark specific: a schema dropped by hand and
// made again under the same name by someone else is not a tenant.
var registryTable = pgx.Identifier{RegistrySchema, "tenants"}.Sanitize()

const createRegistrySQL = `CREATE SCHEMA IF NOT EXISTS ` + RegistrySchema + `;
CREATE TABLE IF NOT EXISTS ` + RegistrySchema + `.tenants (
	name       text PRIMARY KEY,
	schema_oid oid NOT NULL UNIQUE,
	version    bigint NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now()
);
` + upgradeRegistrySQL + `;
` + changesSQL + `
COMMENT ON FUNCTION ` + RegistrySchema + `.notify_changes() IS '` + changesVersion + `'`

// upgradeRegistrySQL adds what later releases keep in the registry to one made by an
// earlier release: every existing tenant is active, with no metadata.
const upgradeRegistrySQL = `ALTER TABLE ` + RegistrySchema + `.tenants
	ADD COLUMN IF NOT EXISTS state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended', 'spare')),
	ADD COLUMN IF NOT EXISTS metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object')`

// VersionMarker is the view, inside a tenant's schema, whose name carries the schema's
// OID and migration version ("tenant_version_7_16391"). A request transaction locks it
// first (ACCESS SHARE): the lock orders the request against migrations (a migration
// takes it exclusively, so it waits for the tenant's requests in flight and later ones
// wait for it), and because a migration renames it (and a schema made again has
// another OID), a request that expected another version or schema fails at once
// instead of running statements prepared for other tables.
func VersionMarker(t Tenant) pgx.Identifier {
	return pgx.Identifier{t.Name, "tenant_version_" + strconv.FormatInt(t.Version, 10) + "_" + strconv.FormatUint(uint64(t.OID), 10)}
}

// Lookup returns the tenant, or an error wrapping ErrNotFound when name is not a
// tenant (missing, dropped, or a schema this package did not create), or ErrSuspended
// for a suspended one: it is how to ask whether a tenant may be served. It always
// asks the database.
func (p *Provisioner) Lookup(ctx context.Context, name string) (Tenant, error) {
	if err := p.Validate(name); err != nil {
		return Tenant{}, err
	}
	t := Tenant{Name: name}
	var state State
	err := p.db.QueryRow(ctx, lookupSQL, name).Scan(&t.OID, &t.Version, &state) // the pool's mode: prepared once, this runs on every admission miss
	if p.upgradedFor(ctx, err) {
		err = p.db.QueryRow(ctx, lookupSQL, name).Scan(&t.OID, &t.Version, &state)
	}
	switch {
	case err == nil && state == Suspended:
		return Tenant{}, fmt.Errorf("schema: %q: %w", name, ErrSuspended)
	case err == nil && state == Active:
		return t, nil
	case err == nil, errors.Is(err, pgx.ErrNoRows), isUndefined(err): // no registry yet: no tenants
		return Tenant{}, fmt.Errorf("schema: %q: %w", name, ErrNotFound)
	default:
		return Tenant{}, fmt.Errorf("schema: lookup %q: %w", name, err)
	}
}

var lookupSQL = `SELECT t.schema_oid, t.version, t.state FROM ` + registryTable + ` t
	JOIN pg_catalog.pg_namespace n ON n.oid = t.schema_oid AND n.nspname = t.name
	WHERE t.name = $1`

// upgradedFor reports whether err says the registry lacks a column (an earlier
// release made it) and the registry was upgraded since: the caller asks again.
func (p *Provisioner) upgradedFor(ctx context.Context, err error) bool {
	return sqlState(err) == "42703" && p.ensureShared(ctx) == nil
}

// Adopt registers an existing schema made by an earlier release of this package,
// before tenants were registered: one that holds the tenant_migrations table. After
// upgrading, run it once for each such schema (Adoptable lists them); until then they
// answer as unknown tenants. Adopting a registered tenant does nothing; a schema
// without tenant_migrations is refused with ErrForeign, a missing one with ErrNotFound.
func (p *Provisioner) Adopt(ctx context.Context, name string) error {
	if err := p.Validate(name); err != nil {
		return err
	}
	if err := p.existing(ctx, "adopt", name); err != nil {
		return err
	}
	if err := p.ensureShared(ctx); err != nil {
		return err
	}
	err := p.retry(ctx, "adopt", name, func() error {
		return inTx(ctx, p.db, func(tx pgx.Tx) error {
			st, err := inspect(ctx, tx, name)
			switch {
			case err != nil:
				return err
			case !st.exists:
				return fmt.Errorf("schema: adopt %q: %w", name, ErrNotFound)
			case st.ours:
				return nil
			case !st.legacy:
				return fmt.Errorf("schema: adopt %q: %w (it has no %s table)", name, ErrForeign, VersionTable)
			}
			_, err = p.register(ctx, tx, name, st)
			return err
		})
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrForeign) {
		return fmt.Errorf("schema: adopt %q: %w", name, err)
	}
	return err
}

// Adoptable lists, sorted, the schemas Adopt would register: valid names holding a
// tenant_migrations table, not yet registered.
func (p *Provisioner) Adoptable(ctx context.Context) ([]string, error) {
	sql := `SELECT n.nspname::text FROM pg_catalog.pg_namespace n
		JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = '` + VersionTable + `' AND c.relkind = 'r'`
	if p.registryExists(ctx) {
		sql += ` WHERE NOT EXISTS (SELECT 1 FROM ` + registryTable + ` t WHERE t.schema_oid = n.oid)`
	}
	rows, err := p.db.Query(ctx, sql+` ORDER BY n.nspname::text COLLATE "C"`, execMode)
	if err != nil {
		return nil, fmt.Errorf("schema: adoptable: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("schema: adoptable: %w", err)
	}
	return p.validOnly(names), nil
}

func (p *Provisioner) registryExists(ctx context.Context) bool {
	var ok bool
	err := p.db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, execMode, registryTable).Scan(&ok)
	return err == nil && ok
}

// schemaState is what inspect saw of a name, under its lock.
type schemaState struct {
	exists   bool   // a schema of that name exists
	ours     bool   // ... and the registry marks it (same OID)
	staleRow bool   // the registry names it, but for a schema that no longer exists
	legacy   bool   // it has a tenant_migrations table (made by an earlier release)
	oid      uint32 // the schema's, when it exists
	version  int64  // the registered version, when ours
}

// inspect takes the transaction-scoped advisory lock for name (released by commit or
// rollback, so it is safe behind PgBouncer in transaction mode) and reports, as seen
// after the lock, whether the schema exists and whether it is a tenant.
func inspect(ctx context.Context, tx pgx.Tx, name string) (schemaState, error) {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", execMode, lockKey, name); err != nil {
		return schemaState{}, err
	}
	var st schemaState
	var version *int64
	var oid *uint32
	err := tx.QueryRow(ctx, `SELECT n.oid, coalesce(t.schema_oid = n.oid, false), t.name IS NOT NULL AND n.oid IS NULL,
			to_regclass(format('%I.%I', $1::text, '`+VersionTable+`')) IS NOT NULL, t.version
		FROM (SELECT $1::text AS name) q
		LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = q.name
		LEFT JOIN `+registryTable+` t ON t.name = q.name`, execMode, name).Scan(&oid, &st.ours, &st.staleRow, &st.legacy, &version)
	if err != nil {
		return schemaState{}, err
	}
	if oid != nil {
		st.exists, st.oid = true, *oid
	}
	if version != nil {
		st.version = *version
	}
	return st, nil
}

// existing answers ErrNotFound for a verb on an existing tenant (Drop, Migrate,
// Adopt, Suspend and the other updates) where no tenant was ever registered and no
// schema is named name, so that the verb makes no shared schema on the way to that
// answer. Once the shared schemas are made, it asks nothing.
func (p *Provisioner) existing(ctx context.Context, verb, name string) error {
	if p.sharedReady.Load() {
		return nil
	}
	var absent bool
	if err := p.db.QueryRow(ctx, `SELECT to_regclass($1) IS NULL
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $2::text)`,
		execMode, registryTable, name).Scan(&absent); err != nil {
		return fmt.Errorf("schema: %s %q: %w", verb, name, err)
	}
	if absent {
		return fmt.Errorf("schema: %s %q: %w", verb, name, ErrNotFound)
	}
	return nil
}

// register marks an existing schema as a tenant: its version marker and its
// registry row, replacing a stale row of the same name. It returns the tenant.
func (p *Provisioner) register(ctx context.Context, tx pgx.Tx, name string, st schemaState) (Tenant, error) {
	t := Tenant{Name: name}
	if err := tx.QueryRow(ctx, "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1::text", execMode, name).Scan(&t.OID); err != nil {
		return Tenant{}, err
	}
	if st.legacy {
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+pgx.Identifier{name, VersionTable}.Sanitize(), execMode).Scan(&t.Version); err != nil {
			return Tenant{}, err
		}
	}
	if err := ensureMarker(ctx, tx, t); err != nil {
		return Tenant{}, err
	}
	if _, err := tx.Exec(ctx, "DELETE FROM "+registryTable+" WHERE name = $1", execMode, name); err != nil {
		return Tenant{}, err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+registryTable+" (name, schema_oid, version) VALUES ($1, $2, $3)", execMode, name, t.OID, t.Version); err != nil {
		return Tenant{}, err
	}
	if p.roles != nil { // before the migrations, whose tables the default privileges reach
		if err := p.grantRole(ctx, tx, t, false); err != nil {
			return Tenant{}, err
		}
	}
	return t, nil
}

// ensureMarker makes the version marker view exist (for a new or adopted schema, or
// one whose marker was lost). It takes no lock when the marker is there.
func ensureMarker(ctx context.Context, tx pgx.Tx, t Tenant) error {
	marker := VersionMarker(t).Sanitize()
	var ok bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", execMode, marker).Scan(&ok); err != nil || ok {
		return err
	}
	_, err := tx.Exec(ctx, "CREATE VIEW "+marker+" AS SELECT "+strconv.FormatInt(t.Version, 10)+"::bigint AS version")
	return err
}

// isUndefined reports a missing schema or table: the registry before its first
// tenant, or a tenant schema dropped under us.
func isUndefined(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000")
}

// execMode sends this package's provisioning statements without naming prepared
// statements on the server: provisioning then works behind PgBouncer in transaction
// mode whatever the pool's statement mode, and per-tenant SQL (migrations, qualified
// names) never fills the statement cache. Lookup, which admission sends for every
// name it does not remember, uses the pool's own mode instead: a prepared statement
// is a third of the server time.
const execMode = pgx.QueryExecModeExec
