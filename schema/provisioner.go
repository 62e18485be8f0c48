package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/singleflight"
)

// ErrExists is returned by Create for a tenant that already exists.
var ErrExists = errors.New("schema already exists")

// ErrNotFound is returned for a tenant that does not exist (Lookup, Migrate, Drop,
// Adopt).
var ErrNotFound = errors.New("schema does not exist")

// ErrLocked is returned by a migration that could not get its tenant within
// Config.LockTimeout: requests kept the tenant busy. Nothing was applied; run it again.
var ErrLocked = errors.New("tenant is busy")

// Defaults for Config's zero values.
const (
	// DefaultAttempts bounds the runs of a provisioning transaction that keeps losing
	// DDL races: enough for the few sessions that collide on one new tenant.
	DefaultAttempts = 5
	// DefaultLockTimeout bounds a migration's wait for its tenant's requests.
	DefaultLockTimeout = 5 * time.Second
)

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

// Config configures a Provisioner. The zero value is usable: no extensions, no
// migrations, DefaultAttempts on DDL races, DefaultLockTimeout for migrations,
// slog.Default.
type Config struct {
	// Extensions are created once, in the shared "extensions" schema that every
	// tenant's search_path reaches. Default none (nil and empty alike);
	// CommonExtensions lists the usual ones.
	Extensions []string
	// Migrations holds the SQL files applied to every tenant schema, in version
	// order, at its root: VERSION_name.sql (001_documents.sql), unique positive
	// versions, each file run in the provisioning transaction with the tenant's
	// search_path (so unqualified names are the tenant's); what follows tern's
	// "---- create above / drop below ----" is ignored. Default none.
	Migrations fs.FS
	// SharedMigrations holds the SQL files of SharedSchema ("shared"), the tables that
	// belong to no tenant (users, plans, domains), named and loaded as Migrations are.
	// They run before any tenant is provisioned (so tenant migrations may refer to
	// shared tables), once per Provisioner and again in every MigrateAll, with
	// search_path "shared", extensions. Every table they make is guarded: a tenant's
	// transaction that writes it fails unless it called tenant.AllowSharedWrites.
	// With them, no tenant may be named "shared". Default none: no shared schema.
	SharedMigrations fs.FS
	// Reserved adds the application's own schema names, which no tenant may take.
	// Default none beyond the built-in ones (see Validate).
	Reserved []string
	// Attempts bounds how often a transaction that lost a DDL race (unique violation,
	// duplicate schema, serialization failure, deadlock) is run. Default
	// DefaultAttempts (5).
	Attempts int
	// LockTimeout bounds how long a migration waits for a tenant's requests in flight
	// before it gives up with ErrLocked (the tenant's new requests wait behind it
	// meanwhile). Default DefaultLockTimeout (5 s).
	LockTimeout time.Duration
	// Logger receives retries and provisioning events. Default slog.Default().
	Logger *slog.Logger
	// Roles, when set, gives every tenant a login role of its own that may use its
	// schema and nothing else (docs/security.md): made and granted with the tenant
	// (spares included), refused logins while it is suspended, dropped with it.
	// Default nil: no roles.
	Roles *Roles
	// Spares is how many spare tenant schemas, fully migrated, to keep in stock for
	// fast sign-up: Create and Ensure of a new tenant rename one instead of running
	// the migrations (see FillStock). Default 0: no stock, every tenant is made by
	// running its migrations.
	Spares int
}

// CommonExtensions returns the extensions many applications want in every tenant
// (and onegov provisions): btree_gist, hstore (which locale.Text can use), intarray
// and unaccent. Pass them, or a selection, as Config.Extensions; nothing is created
// unless asked for. Each call returns a new slice.
func CommonExtensions() []string {
	return []string{"btree_gist", "hstore", "intarray", "unaccent"}
}

// Provisioner creates, migrates, lists and drops tenant schemas. It is safe for
// concurrent use, and several processes may provision at once: each schema's
// provisioning runs in one transaction holding an advisory lock keyed by its name.
// It keeps no cache: every call asks the database, so a schema dropped by anyone is
// seen at once (callers that need speed cache admissions, as tenant.Manager does).
type Provisioner struct {
	db         DB
	reserved   []string
	migrations []migration
	// sharedMigrations are Config.SharedMigrations, applied to SharedSchema.
	sharedMigrations []migration
	extensions       []string
	attempts         int
	lockTimeout      time.Duration
	log              *slog.Logger

	shared      singleflight.Group // the one ensureShared at work
	sharedReady atomic.Bool

	spares int
	stock  stock // the background refill of the spares

	roles *Roles        // Config.Roles
	dbOID atomic.Uint32 // the database's, for role names; 0 until asked
}

// NewProvisioner checks the configuration (extension names, migration files) and
// returns a Provisioner. It does not touch the database.
func NewProvisioner(db DB, cfg Config) (*Provisioner, error) {
	migrations, err := loadMigrations(cfg.Migrations)
	if err != nil {
		return nil, err
	}
	shared, err := loadMigrations(cfg.SharedMigrations)
	if err != nil {
		return nil, fmt.Errorf("shared: %w", err)
	}
	p := &Provisioner{
		db:          db,
		reserved:    slices.Clone(cfg.Reserved),
		migrations:  migrations,
		extensions:  slices.Clone(cfg.Extensions),
		attempts:    cfg.Attempts,
		lockTimeout: cfg.LockTimeout,
		log:         cfg.Logger,
		spares:      max(cfg.Spares, 0),

		sharedMigrations: shared,
	}
	if len(shared) > 0 {
		p.reserved = append(p.reserved, SharedSchema)
	}
	if cfg.Roles != nil {
		if err := cfg.Roles.check(); err != nil {
			return nil, err
		}
		p.roles = &Roles{Secrets: slices.Clone(cfg.Roles.Secrets)}
	}
	for _, e := range p.extensions {
		if !extensionName.MatchString(e) {
			return nil, fmt.Errorf("schema: %w: %q", ErrExtensionName, e)
		}
	}
	if p.attempts <= 0 {
		p.attempts = DefaultAttempts
	}
	if p.lockTimeout <= 0 {
		p.lockTimeout = DefaultLockTimeout
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.stock.init()
	return p, nil
}

// Validate is the package's Validate with Config.Reserved: what every method of p
// checks before any SQL. Use it to check a name (a sign-up form's) without a query.
func (p *Provisioner) Validate(name string) error { return Validate(name, p.reserved...) }

// Ensure makes sure the tenant exists and has every migration: a missing tenant is
// created (the shared extensions, its schema, its registration and every migration,
// committed together: all or nothing), an existing one gets its pending migrations.
// It is idempotent, and any number of goroutines and processes may ensure the same
// new tenant at once: one creates it, all succeed. A schema of that name that is not
// a tenant is refused with ErrForeign, and nothing is created in it.
func (p *Provisioner) Ensure(ctx context.Context, name string) error {
	return p.provision(ctx, name, modeEnsure)
}

// Create is Ensure for a tenant that must be new (a sign-up): when the tenant exists
// it changes nothing and returns an error wrapping ErrExists.
func (p *Provisioner) Create(ctx context.Context, name string) error {
	return p.provision(ctx, name, modeCreate)
}

// Migrate applies the pending migrations to an existing tenant and never creates
// one: ErrNotFound when it is missing, ErrForeign for a schema that is not a tenant.
func (p *Provisioner) Migrate(ctx context.Context, name string) error {
	return p.provision(ctx, name, modeMigrate)
}

// Drop removes the tenant's schema and everything in it (CASCADE) and its
// registration. It returns an error wrapping ErrNotFound when the tenant does not
// exist, ErrForeign for a schema this package did not create (which it never drops).
func (p *Provisioner) Drop(ctx context.Context, name string) error {
	if err := p.Validate(name); err != nil {
		return err
	}
	if err := p.existing(ctx, "drop", name); err != nil {
		return err
	}
	if err := p.ensureShared(ctx); err != nil { // the registry, which Drop reads
		return err
	}
	var missing bool
	err := p.retry(ctx, "drop", name, func() error {
		missing = false
		return inTx(ctx, p.db, func(tx pgx.Tx) error {
			st, err := inspect(ctx, tx, name)
			switch {
			case err != nil:
				return err
			case st.exists && !st.ours:
				return fmt.Errorf("schema: drop %q: %w", name, ErrForeign)
			case !st.exists:
				missing = true // a registration left by a DROP SCHEMA made by hand goes too, with its role
				var oid uint32
				err := tx.QueryRow(ctx, "DELETE FROM "+registryTable+" WHERE name = $1 RETURNING schema_oid", execMode, name).Scan(&oid)
				if errors.Is(err, pgx.ErrNoRows) || (err == nil && p.roles == nil) {
					return nil
				}
				if err != nil {
					return err
				}
				return p.dropRole(ctx, tx, Tenant{Name: name, OID: oid})
			}
			// The marker first, as requests take it: DROP SCHEMA takes the tables first
			// and the marker last, so a request that began meanwhile would hold the
			// marker and wait for a table, a deadlock. Taken first, new requests queue
			// behind the drop and then find the tenant gone.
			t := Tenant{Name: name, OID: st.oid, Version: st.version}
			if err := ensureMarker(ctx, tx, t); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "LOCK TABLE "+VersionMarker(t).Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
				return err
			}
			if p.roles != nil {
				if err := p.dropRole(ctx, tx, t); err != nil {
					return err
				}
			}
			_, err = tx.Exec(ctx, "DELETE FROM "+registryTable+" WHERE name = $1", execMode, name)
			return err
		})
	})
	switch {
	case err == nil && missing:
		return fmt.Errorf("schema: drop %q: %w", name, ErrNotFound)
	case err != nil && !errors.Is(err, ErrForeign):
		return fmt.Errorf("schema: drop %q: %w", name, err)
	}
	return err
}

// List returns the tenants, sorted: the registered schemas that exist, suspended ones
// included. With a namespace, only "namespace-*" tenants: "foo" matches "foo-bar",
// not "foobar" or "foo_bar". Schemas this package did not create are never listed.
func (p *Provisioner) List(ctx context.Context, namespace string) ([]string, error) {
	infos, err := p.ListInfo(ctx, namespace)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = in.Name
	}
	return names, nil
}

// validOnly drops names that no longer pass Validate (an application may reserve a
// name after a tenant took it).
func (p *Provisioner) validOnly(names []string) []string {
	out := names[:0]
	for _, n := range names {
		if p.Validate(n) == nil {
			out = append(out, n)
		}
	}
	return out
}

type mode int

const (
	modeCreate mode = iota
	modeEnsure
	modeMigrate
)

// provision does what Ensure, Create and Migrate promise, in one transaction under
// the name's lock, run again on a DDL race.
func (p *Provisioner) provision(ctx context.Context, name string, m mode) error {
	if err := p.Validate(name); err != nil {
		return err
	}
	if m == modeMigrate {
		if err := p.existing(ctx, "migrate", name); err != nil {
			return err
		}
	}
	if err := p.ensureShared(ctx); err != nil {
		return err
	}
	var created, fromStock bool
	err := p.retry(ctx, "provision", name, func() error {
		created, fromStock = false, false // a retried attempt starts over
		return inTx(ctx, p.db, func(tx pgx.Tx) error {
			var err error
			created, fromStock, err = p.provisionTx(ctx, tx, name, m)
			return err
		})
	})
	if err != nil {
		if errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrForeign) {
			return err
		}
		return fmt.Errorf("schema: provision %q: %w", name, err)
	}
	if created {
		p.log.InfoContext(ctx, "tenant schema created", slog.String("tenant", name), slog.Int("migrations", len(p.migrations)),
			slog.Bool("from_stock", fromStock))
		if p.spares > 0 { // a spare taken, or none at hand: either way the stock wants work
			p.refill()
		}
	}
	return nil
}

// provisionTx does the work of one attempt inside tx, under the schema's lock. A new
// tenant is a spare from the stock when one is at hand (fromStock), else made here.
func (p *Provisioner) provisionTx(ctx context.Context, tx pgx.Tx, name string, m mode) (created, fromStock bool, err error) {
	st, err := inspect(ctx, tx, name)
	if err != nil {
		return false, false, err
	}
	t := Tenant{Name: name, OID: st.oid, Version: st.version}
	switch {
	case st.exists && !st.ours:
		return false, false, fmt.Errorf("schema: %q: %w", name, ErrForeign)
	case st.exists && m == modeCreate:
		return false, false, fmt.Errorf("schema: create %q: %w", name, ErrExists)
	case !st.exists && m == modeMigrate:
		return false, false, fmt.Errorf("schema: migrate %q: %w", name, ErrNotFound)
	case !st.exists:
		if p.spares > 0 {
			if t, fromStock, err = p.takeSpare(ctx, tx, name); err != nil {
				return false, false, err
			}
		}
		if !fromStock {
			if t, err = p.createSchema(ctx, tx, name); err != nil {
				return false, false, err
			}
		}
		created = true
	}
	if _, err := p.migrate(ctx, tx, t); err != nil { // for a spare: nothing to do, no lock taken
		return false, false, err
	}
	return created, fromStock, nil
}

// createSchema makes the schema name with its version table, version marker and
// registration (version 0, replacing a stale row of that name), unmigrated.
func (p *Provisioner) createSchema(ctx context.Context, tx pgx.Tx, name string) (Tenant, error) {
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()+"; CREATE TABLE "+versionTableColumns(name)); err != nil {
		return Tenant{}, err
	}
	return p.register(ctx, tx, name, schemaState{})
}

// latest is the highest migration version, 0 without migrations.
func (p *Provisioner) latest() int64 {
	if len(p.migrations) == 0 {
		return 0
	}
	return p.migrations[len(p.migrations)-1].Version
}

// SearchPath is the search_path value for a tenant: its schema, then the shared
// extensions, then pg_temp. public is deliberately absent. pg_temp is named last
// because PostgreSQL searches it first when it is not named: a temporary table would
// then shadow the tenant's table of the same name. name must be valid.
func SearchPath(name string) string {
	return pgx.Identifier{name}.Sanitize() + ", " + ExtensionsSchema + ", pg_temp"
}

// inTx runs fn in a READ COMMITTED transaction whatever the server's default: after
// waiting for a schema's lock, each statement must see what the previous holder
// committed.
func inTx(ctx context.Context, db DB, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
}

// lockKey is the first key of the two-key advisory locks this package takes, so they
// never collide with an application's single-key locks.
const lockKey = 0x54454e54 // "TENT"
