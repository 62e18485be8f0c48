package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrExists is returned by Create for a schema that already exists.
var ErrExists = errors.New("schema already exists")

// ErrNotFound is returned by Drop and Migrate for a schema that does not exist.
var ErrNotFound = errors.New("schema does not exist")

// VersionTable is the table, inside each tenant schema, that records applied migrations.
const VersionTable = "tenant_migrations"

// DB is what the Provisioner needs from PostgreSQL; *pgxpool.Pool and *pgx.Conn
// satisfy it. Use a pool (or a dedicated connection), never a PgBouncer
// statement-mode pool: provisioning needs real transactions.
type DB interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Config configures a Provisioner. The zero value is usable: default extensions, no
// migrations, five attempts on DDL races, slog.Default.
type Config struct {
	// Extensions are created in the shared "extensions" schema. nil means
	// DefaultExtensions(); an empty, non-nil slice means none.
	Extensions []string
	// Migrations holds the VERSION_name.sql files applied to every tenant schema
	// (see LoadMigrations). nil means none.
	Migrations fs.FS
	// Reserved adds the application's own schema names, which no tenant may take.
	Reserved []string
	// Attempts bounds how often a transaction that lost a DDL race (unique violation,
	// duplicate schema, serialization failure, deadlock) is run. Default 5.
	Attempts int
	// Logger receives retries and provisioning events. Default slog.Default().
	Logger *slog.Logger
}

// DefaultExtensions are the extensions provisioned when Config.Extensions is nil.
func DefaultExtensions() []string {
	return []string{"btree_gist", "hstore", "intarray", "unaccent"}
}

// Provisioner creates, migrates, lists and drops tenant schemas. It is safe for
// concurrent use, and several processes may provision at once: each schema's
// provisioning runs in one transaction holding an advisory lock keyed by its name.
type Provisioner struct {
	db         DB
	validator  Validator
	migrations []Migration
	extensions []string
	attempts   int
	log        *slog.Logger

	extMu    sync.Mutex
	extReady bool
	ready    sync.Map // schema name → struct{}: provisioned and migrated by this Provisioner
}

// NewProvisioner checks the configuration (extension names, migration files) and
// returns a Provisioner. It does not touch the database.
func NewProvisioner(db DB, cfg Config) (*Provisioner, error) {
	migrations, err := LoadMigrations(cfg.Migrations)
	if err != nil {
		return nil, err
	}
	p := &Provisioner{
		db:         db,
		validator:  Validator{Reserved: cfg.Reserved},
		migrations: migrations,
		extensions: cfg.Extensions,
		attempts:   cfg.Attempts,
		log:        cfg.Logger,
	}
	if p.extensions == nil {
		p.extensions = DefaultExtensions()
	}
	for _, e := range p.extensions {
		if !extensionName.MatchString(e) {
			return nil, fmt.Errorf("schema: %w: %q", ErrExtensionName, e)
		}
	}
	if p.attempts <= 0 {
		p.attempts = 5
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	return p, nil
}

// Validate checks name with the built-in rules and the configured reserved names.
func (p *Provisioner) Validate(name string) error { return p.validator.Validate(name) }

// Migrations returns the loaded migrations, in order.
func (p *Provisioner) Migrations() []Migration { return append([]Migration(nil), p.migrations...) }

// Exists reports whether the schema exists. It always asks the database.
func (p *Provisioner) Exists(ctx context.Context, name string) (bool, error) {
	if err := p.Validate(name); err != nil {
		return false, err
	}
	var ok bool
	if err := p.db.QueryRow(ctx, existsSQL, name).Scan(&ok); err != nil {
		return false, fmt.Errorf("schema: exists %q: %w", name, err)
	}
	return ok, nil
}

// Create provisions a new schema: extensions, the schema, every migration, committed
// together. It returns an error wrapping ErrExists when the schema already exists.
func (p *Provisioner) Create(ctx context.Context, name string) error {
	_, err := p.provision(ctx, name, modeCreate)
	return err
}

// CreateIfNotExists provisions the schema when it is missing and applies pending
// migrations when it exists. created reports whether this call made the schema.
func (p *Provisioner) CreateIfNotExists(ctx context.Context, name string) (created bool, err error) {
	return p.provision(ctx, name, modeEnsure)
}

// Migrate applies pending migrations to an existing schema; ErrNotFound when missing.
func (p *Provisioner) Migrate(ctx context.Context, name string) error {
	_, err := p.provision(ctx, name, modeMigrate)
	return err
}

// Ensure is CreateIfNotExists, remembered: once a schema was provisioned by this
// Provisioner, later calls return nil without touching the database. Many goroutines
// and processes may ensure the same new schema at once; one creates it, all succeed.
func (p *Provisioner) Ensure(ctx context.Context, name string) error {
	if _, ok := p.ready.Load(name); ok {
		return nil
	}
	_, err := p.provision(ctx, name, modeEnsure)
	return err
}

// Drop removes the schema and everything in it (CASCADE) and forgets it. It returns
// an error wrapping ErrNotFound when the schema does not exist.
func (p *Provisioner) Drop(ctx context.Context, name string) error {
	if err := p.Validate(name); err != nil {
		return err
	}
	defer p.ready.Delete(name)
	err := p.retry(ctx, "drop", name, func() error {
		return inTx(ctx, p.db, func(tx pgx.Tx) error {
			exists, err := lockSchema(ctx, tx, name)
			if err != nil {
				return err
			}
			if !exists {
				return fmt.Errorf("schema: drop %q: %w", name, ErrNotFound)
			}
			_, err = tx.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE")
			return err
		})
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("schema: drop %q: %w", name, err)
	}
	return err
}

// List returns the tenant schemas, sorted: every schema whose name passes Validate
// (so never pg_*, information_schema, public, extensions or a reserved name). With a
// namespace, only "namespace-*" schemas: "foo" matches "foo-bar", not "foobar" or
// "foo_bar".
func (p *Provisioner) List(ctx context.Context, namespace string) ([]string, error) {
	if namespace != "" {
		if err := ValidateNamespace(namespace); err != nil {
			return nil, err
		}
	}
	rows, err := p.db.Query(ctx, `SELECT nspname::text FROM pg_catalog.pg_namespace
		WHERE $1 = '' OR starts_with(nspname::text, $1 || '-') ORDER BY nspname COLLATE "C"`, namespace)
	if err != nil {
		return nil, fmt.Errorf("schema: list: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("schema: list: %w", err)
	}
	out := names[:0]
	for _, n := range names {
		if p.validator.Valid(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

type mode int

const (
	modeCreate mode = iota
	modeEnsure
	modeMigrate
)

func (p *Provisioner) provision(ctx context.Context, name string, m mode) (created bool, err error) {
	if err := p.Validate(name); err != nil {
		return false, err
	}
	if err := p.EnsureExtensions(ctx); err != nil {
		return false, err
	}
	err = p.retry(ctx, "provision", name, func() error {
		created = false // a retried attempt starts over
		return inTx(ctx, p.db, func(tx pgx.Tx) error {
			var err error
			created, err = p.provisionTx(ctx, tx, name, m)
			return err
		})
	})
	if err != nil {
		if errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) {
			return false, err
		}
		return false, fmt.Errorf("schema: provision %q: %w", name, err)
	}
	p.ready.Store(name, struct{}{})
	if created {
		p.log.InfoContext(ctx, "tenant schema created", slog.String("tenant", name), slog.Int("migrations", len(p.migrations)))
	}
	return created, nil
}

// provisionTx does the work of one attempt inside tx, under the schema's lock.
func (p *Provisioner) provisionTx(ctx context.Context, tx pgx.Tx, name string, m mode) (created bool, err error) {
	exists, err := lockSchema(ctx, tx, name)
	if err != nil {
		return false, err
	}
	ident := pgx.Identifier{name}.Sanitize()
	switch {
	case exists && m == modeCreate:
		return false, fmt.Errorf("schema: create %q: %w", name, ErrExists)
	case !exists && m == modeMigrate:
		return false, fmt.Errorf("schema: migrate %q: %w", name, ErrNotFound)
	case !exists:
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
			return false, err
		}
		created = true
	}
	if err := p.migrate(ctx, tx, name); err != nil {
		return false, err
	}
	return created, nil
}

// migrate applies the pending migrations inside tx with the tenant's search_path.
func (p *Provisioner) migrate(ctx context.Context, tx pgx.Tx, name string) error {
	table := pgx.Identifier{name, VersionTable}.Sanitize()
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+
		" (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, "SELECT version FROM "+table)
	if err != nil {
		return err
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	done := make(map[int64]bool, len(applied))
	for _, v := range applied {
		done[v] = true
	}
	for _, mig := range p.migrations {
		if done[mig.Version] {
			continue
		}
		// Set before each file: a migration may change search_path itself.
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", SearchPath(name)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, mig.SQL); err != nil {
			return fmt.Errorf("%w: %s in schema %q: %w", ErrMigrationFailed, mig.Name, name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (version, name) VALUES ($1, $2)", mig.Version, mig.Name); err != nil {
			return err
		}
	}
	return nil
}

// SearchPath is the search_path value for a tenant: its schema, then the shared
// extensions. public is deliberately absent. name must be valid.
func SearchPath(name string) string {
	return pgx.Identifier{name}.Sanitize() + ", " + ExtensionsSchema
}

// inTx runs fn in a READ COMMITTED transaction whatever the server's default: after
// waiting for a schema's lock, each statement must see what the previous holder
// committed.
func inTx(ctx context.Context, db DB, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
}

const existsSQL = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)"

// lockKey is the first key of the two-key advisory locks this package takes, so they
// never collide with an application's single-key locks.
const lockKey = 0x54454e54 // "TENT"

// lockSchema takes the transaction-scoped advisory lock for name (released by commit
// or rollback, so it is safe behind PgBouncer in transaction mode) and then reports
// whether the schema exists, as seen after the lock.
func lockSchema(ctx context.Context, tx pgx.Tx, name string) (bool, error) {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", lockKey, name); err != nil {
		return false, err
	}
	var exists bool
	err := tx.QueryRow(ctx, existsSQL, name).Scan(&exists)
	return exists, err
}
