package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrMigrations is wrapped by errors in the migration files themselves (bad names,
// duplicate versions, empty files), reported when the Provisioner is made.
var ErrMigrations = errors.New("invalid migrations")

// ErrMigrationFailed is wrapped when a migration's SQL fails in a tenant schema.
var ErrMigrationFailed = errors.New("migration failed")

// ErrMigrationOrder is wrapped when a pending migration is older than one a tenant
// already has: migrations apply in version order, so that a tenant's version always
// says which tables it has.
var ErrMigrationOrder = errors.New("migration out of order")

// migration is one SQL file: "0001_create_documents.sql" is version 1.
type migration struct {
	Version int64
	Name    string // the file name
	SQL     string
}

var migrationFile = regexp.MustCompile(`\A(\d+)_[^/]+\.sql\z`)

// downMarker is tern's separator; what follows it is a down migration, which tenant
// provisioning never runs, so files written for tern load unchanged.
const downMarker = "---- create above / drop below ----"

// loadMigrations reads the *.sql files at the root of fsys, named VERSION_name.sql
// (e.g. 001_documents.sql), sorted by version. The SQL runs with search_path set to
// the tenant schema and "extensions", so it should not qualify tenant tables. Files
// must not contain statements that cannot run inside a transaction.
// Every problem is reported as an error wrapping ErrMigrations.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	if fsys == nil {
		return nil, nil
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("schema: %w: %w", ErrMigrations, err)
	}
	var out []migration
	seen := map[int64]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("schema: %w: %q is not named VERSION_name.sql", ErrMigrations, e.Name())
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("schema: %w: %q: version must be a positive number", ErrMigrations, e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("schema: %w: %q and %q share version %d", ErrMigrations, other, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("schema: %w: %w", ErrMigrations, err)
		}
		sql, _, _ := strings.Cut(string(body), downMarker)
		if strings.TrimSpace(sql) == "" {
			return nil, fmt.Errorf("schema: %w: %q has no SQL", ErrMigrations, e.Name())
		}
		out = append(out, migration{Version: v, Name: e.Name(), SQL: sql})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// migrate applies the pending migrations to tenant t inside tx, with its
// search_path. A migration that would run out of order (older than one applied) is
// refused: the version, which keys prepared statements, must change whenever the
// tables do. When something is pending, the version marker is locked exclusively
// first (in-flight requests of this tenant finish, new ones wait), within
// Config.LockTimeout, then renamed to the new version with the registry row.
func (p *Provisioner) migrate(ctx context.Context, tx pgx.Tx, t Tenant) (applied int, err error) {
	done, _, err := appliedIn(ctx, tx, t.Name)
	if err != nil {
		return 0, err
	}
	pending, err := pendingOf(p.migrations, done, t.Version, t.Name)
	if err != nil {
		return 0, err
	}
	if err := ensureMarker(ctx, tx, t); err != nil { // repairs a lost marker
		return 0, err
	}
	if len(pending) == 0 {
		return 0, nil // no lock: a migrate with nothing to do never delays requests
	}
	if err := p.lockMarker(ctx, tx, t); err != nil {
		return 0, err
	}
	if err := apply(ctx, tx, t.Name, pending); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, "DROP VIEW "+VersionMarker(t).Sanitize()); err != nil {
		return 0, err
	}
	t.Version = pending[len(pending)-1].Version
	if err := ensureMarker(ctx, tx, t); err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, "UPDATE "+registryTable+" SET version = $2 WHERE name = $1", execMode, t.Name, t.Version)
	return len(pending), err
}

// versionTableColumns is schema name's version table with its columns, for CREATE
// TABLE: one definition for tenants and the shared schema.
func versionTableColumns(name string) string {
	return pgx.Identifier{name, VersionTable}.Sanitize() +
		" (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
}

// appliedIn reads the versions recorded in schema name's version table, and the
// highest of them (0 for none).
func appliedIn(ctx context.Context, tx pgx.Tx, name string) (done map[int64]bool, top int64, err error) {
	rows, err := tx.Query(ctx, "SELECT version FROM "+pgx.Identifier{name, VersionTable}.Sanitize(), execMode)
	if err != nil {
		return nil, 0, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, 0, err
	}
	done = make(map[int64]bool, len(versions))
	for _, v := range versions {
		done[v] = true
		top = max(top, v)
	}
	return done, top, nil
}

// pendingOf returns the migrations of migs not done, in version order, for schema
// name whose applied version is top. One older than top is refused: a schema's
// version must say which tables it has.
func pendingOf(migs []migration, done map[int64]bool, top int64, name string) ([]migration, error) {
	var pending []migration
	for _, mig := range migs {
		if done[mig.Version] {
			continue
		}
		if mig.Version < top {
			return nil, fmt.Errorf("%w: %s in schema %q is older than the applied version %d: give it a higher version",
				ErrMigrationOrder, mig.Name, name, top)
		}
		pending = append(pending, mig)
	}
	return pending, nil
}

// apply runs migs in schema name inside tx, each with the schema's search_path, and
// records each in the schema's version table.
func apply(ctx context.Context, tx pgx.Tx, name string, migs []migration) error {
	table := pgx.Identifier{name, VersionTable}.Sanitize()
	for _, mig := range migs {
		// Set before each file: a migration may change search_path itself.
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", execMode, SearchPath(name)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, mig.SQL); err != nil {
			return fmt.Errorf("%w: %s in schema %q: %w", ErrMigrationFailed, mig.Name, name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (version, name) VALUES ($1, $2)", execMode, mig.Version, mig.Name); err != nil {
			return err
		}
	}
	return nil
}

// lockMarker takes the tenant's version marker exclusively, waiting at most
// Config.LockTimeout for the tenant's requests in flight: while a migration waits,
// the tenant's new requests queue behind it, so a long request (or a request waiting
// on a transaction of its own tenant) must make the migration give up, not stall the
// tenant. The timeout covers the lock only, not the migration's DDL.
func (p *Provisioner) lockMarker(ctx context.Context, tx pgx.Tx, t Tenant) error {
	_, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", execMode, strconv.FormatInt(p.lockTimeout.Milliseconds(), 10))
	if err == nil {
		_, err = tx.Exec(ctx, "LOCK TABLE "+VersionMarker(t).Sanitize()+" IN ACCESS EXCLUSIVE MODE")
	}
	if sqlState(err) == "55P03" {
		return fmt.Errorf("%w: schema %q: its requests kept it busy for %v", ErrLocked, t.Name, p.lockTimeout)
	}
	if err == nil {
		_, err = tx.Exec(ctx, "SET LOCAL lock_timeout TO DEFAULT")
	}
	return err
}
