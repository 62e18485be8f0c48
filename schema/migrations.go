package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
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

// Migration is one SQL file: "0001_create_documents.sql" is version 1.
type Migration struct {
	Version int64
	Name    string // the file name
	SQL     string
}

var migrationFile = regexp.MustCompile(`\A(\d+)_[^/]+\.sql\z`)

// downMarker is tern's separator; what follows it is a down migration, which tenant
// provisioning never runs, so files written for tern load unchanged.
const downMarker = "---- create above / drop below ----"

// LoadMigrations reads the *.sql files at the root of fsys, named VERSION_name.sql
// (e.g. 001_documents.sql), sorted by version. The SQL runs with search_path set to
// the tenant schema and "extensions", so it should not qualify tenant tables. Files
// must not contain statements that cannot run inside a transaction.
// Every problem is reported as an error wrapping ErrMigrations.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	if fsys == nil {
		return nil, nil
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("schema: %w: %w", ErrMigrations, err)
	}
	var out []Migration
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
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: sql})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}
