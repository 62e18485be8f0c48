package schema_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/schema"
)

// appMigrations are what an application's first releases look like: identity and
// serial keys, a sequence default, foreign keys, unique, check and exclusion-free
// constraints, jsonb with a GIN index, an expression index, a generated column, a
// view, an SQL function, a trigger.
var appMigrations = fstest.MapFS{
	"001_accounts.sql": {Data: []byte(`
CREATE SEQUENCE invoice_numbers START 1000 INCREMENT 10;
CREATE TABLE accounts (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email text NOT NULL UNIQUE,
	settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE projects (
	id serial PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	name text NOT NULL CHECK (name <> ''),
	budget numeric(12, 2) CHECK (budget >= 0),
	UNIQUE (account_id, name)
);
CREATE INDEX projects_name_lower ON projects (lower(name));`)},
	"002_invoices.sql": {Data: []byte(`
CREATE TABLE invoices (
	number bigint PRIMARY KEY DEFAULT nextval('invoice_numbers'),
	project_id int NOT NULL REFERENCES projects,
	lines jsonb NOT NULL DEFAULT '[]',
	total numeric(12, 2) GENERATED ALWAYS AS ((lines -> 0 ->> 'amount')::numeric) STORED
);
ALTER SEQUENCE invoice_numbers OWNED BY invoices.number;
CREATE INDEX invoices_lines ON invoices USING gin (lines jsonb_path_ops);
CREATE VIEW project_totals AS
	SELECT p.id, p.name, coalesce(sum(i.total), 0) AS total FROM projects p LEFT JOIN invoices i ON i.project_id = p.id
	GROUP BY p.id, p.name;
CREATE FUNCTION project_count(account bigint) RETURNS bigint LANGUAGE sql STABLE
	AS 'SELECT count(*) FROM projects WHERE account_id = account';
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
	AS $$BEGIN NEW.settings := NEW.settings || '{"touched": true}'; RETURN NEW; END$$;
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();`)},
}

// withApp returns appMigrations plus more files.
func withApp(files map[string]string) fstest.MapFS {
	out := fstest.MapFS{}
	for k, v := range appMigrations {
		out[k] = v
	}
	for k, v := range files {
		out[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return out
}

// emptyDatabase drops every tenant and spare, one transaction each (a few hundred
// would exceed the lock table): the next test starts from nothing.
func emptyDatabase(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT name FROM tenant_registry.tenants`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for _, name := range names {
		_, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `DELETE FROM tenant_registry.tenants WHERE name = $1`, name)
		require.NoError(t, err)
	}
}

// stockProvisioner makes a Provisioner without extensions, closed when the test ends
// (before its pool: cleanups run last-in, first-out).
func stockProvisioner(t *testing.T, pool *pgxpool.Pool, migrations fstest.MapFS, spares int) *schema.Provisioner {
	t.Helper()
	p := newProvisioner(t, pool, schema.Config{Migrations: migrations, Extensions: []string{}, Spares: spares})
	t.Cleanup(p.Close)
	return p
}

// spare is a spare schema in the registry.
type spare struct {
	Name    string
	OID     uint32
	Version int64
}

// spares lists the stock, by OID.
func spares(t *testing.T, pool *pgxpool.Pool) map[uint32]spare {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT t.name, t.schema_oid, t.version FROM tenant_registry.tenants t
		JOIN pg_namespace n ON n.oid = t.schema_oid AND n.nspname = t.name WHERE t.state = 'spare'`)
	require.NoError(t, err)
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[spare])
	require.NoError(t, err)
	out := map[uint32]spare{}
	for _, s := range all {
		out[s.OID] = s
	}
	return out
}

// describe lists what a tenant schema holds, as PostgreSQL deparses it, with the
// schema's name replaced by <schema> (deparsing qualifies names outside the
// search_path): two tenants made by the same migrations must describe alike.
func describe(t *testing.T, pool *pgxpool.Pool, name string) []string {
	t.Helper()
	ctx := context.Background()
	queries := map[string]string{
		"relation": `SELECT c.relname||' '||c.relkind::text||' '||coalesce(c.relacl::text, '')||' '||c.relpersistence::text
			FROM pg_class c WHERE c.relnamespace = $1 AND c.relname NOT LIKE 'tenant_version_%'`,
		"column": `SELECT c.relname||'.'||a.attname||' #'||a.attnum||' '||format_type(a.atttypid, a.atttypmod)||' notnull='||a.attnotnull
				||' identity='||a.attidentity::text||' generated='||a.attgenerated::text||' default='||coalesce(pg_get_expr(d.adbin, d.adrelid), '')
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
			WHERE c.relnamespace = $1 AND a.attnum > 0 AND NOT a.attisdropped AND c.relname NOT LIKE 'tenant_version_%'`,
		"index":      `SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = $1`,
		"constraint": `SELECT conrelid::regclass||' '||conname||' '||pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = $1`,
		"sequence": `SELECT c.relname||' '||format_type(s.seqtypid, NULL)||' start='||s.seqstart||' inc='||s.seqincrement
				||' min='||s.seqmin||' max='||s.seqmax||' cache='||s.seqcache||' cycle='||s.seqcycle
				||' owned by '||coalesce(o.relname||'.'||att.attname||' ('||d.deptype::text||')', 'nothing')
				||' last='||coalesce(q.last_value::text, 'unused')
			FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
			JOIN pg_namespace ns ON ns.oid = c.relnamespace
			JOIN pg_sequences q ON q.schemaname = ns.nspname AND q.sequencename = c.relname
			LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
				AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
			LEFT JOIN pg_class o ON o.oid = d.refobjid
			LEFT JOIN pg_attribute att ON att.attrelid = d.refobjid AND att.attnum = d.refobjsubid
			WHERE c.relnamespace = $1`,
		"view":      `SELECT relname||': '||pg_get_viewdef(oid) FROM pg_class WHERE relnamespace = $1 AND relkind IN ('v', 'm') AND relname NOT LIKE 'tenant_version_%'`,
		"function":  `SELECT pg_get_functiondef(oid) FROM pg_proc WHERE pronamespace = $1`,
		"trigger":   `SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1 AND NOT t.tgisinternal`,
		"migration": `SELECT version||' '||name FROM ` + pgx.Identifier{name, schema.VersionTable}.Sanitize(),
		"registry":  `SELECT state||' version='||version||' metadata='||metadata FROM tenant_registry.tenants WHERE schema_oid = $1`,
	}
	oid := oidOf(t, pool, name)
	var out []string
	for kind, q := range queries {
		args := []any{oid}
		if kind == "migration" {
			args = nil
		}
		rows, err := pool.Query(ctx, q, args...)
		require.NoError(t, err, kind)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err, kind)
		require.NotEmpty(t, got, kind)
		for _, g := range got {
			g = strings.ReplaceAll(g, pgx.Identifier{name}.Sanitize()+".", "<schema>.")
			g = strings.ReplaceAll(g, name+".", "<schema>.")
			out = append(out, kind+": "+g)
		}
	}
	return out
}

// hasMarker reports whether the tenant's version marker, named by its OID, is there.
func hasMarker(t *testing.T, pool *pgxpool.Pool, name string, version int64) bool {
	t.Helper()
	oid := oidOf(t, pool, name)
	marker := fmt.Sprintf("tenant_version_%d_%d", version, oid)
	return count(t, pool, `SELECT count(*) FROM pg_class WHERE relnamespace = $1 AND relname = $2 AND relkind = 'v'`, oid, marker) == 1
}
