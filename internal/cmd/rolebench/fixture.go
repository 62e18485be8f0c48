package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// prefix names the fixture's roles, which are cluster-wide: every run drops those a
// previous run left. The test sets another, so as not to drop a running benchmark's.
var prefix = "tenant_rolebench"

// benchPassword is every fixture role's password. The roles are given its SCRAM
// secret as computed once by the server, so making 10,000 of them hashes nothing.
const benchPassword = "bench"

func roleName(i int) string    { return fmt.Sprintf("%s_%05d", prefix, i) }
func schemaName(i int) string  { return fmt.Sprintf("rb_%05d", i) }
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func ownerRole() string { return prefix + "_owner" } // owns every schema: the default mode's login
// appRole is the SET ROLE mode's login for n tenants: a member of the first n tenant
// roles (what SET ROLE checks grows with the memberships).
func appRole(n int) string { return fmt.Sprintf("%s_app%d", prefix, n) }
func authRole() string     { return prefix + "_auth" } // PgBouncer's auth_user

// fixture makes database db with tenants one-table tenants (items, ten rows), a
// LOGIN role each with USAGE on its schema and DML on its table, the owner, an app
// role for each of the counts, and the function PgBouncer's auth_query calls. It drops
// what an earlier run left first.
func fixture(ctx context.Context, admin *pgx.Conn, dbURL, db string, tenants int, counts []int) error {
	if err := teardown(ctx, admin, db); err != nil {
		return err
	}
	setup := fmt.Sprintf(`CREATE DATABASE %[1]s;
		SET password_encryption = 'scram-sha-256';
		CREATE ROLE %[2]s LOGIN PASSWORD '%[4]s';
		CREATE ROLE %[3]s LOGIN;
		GRANT CREATE ON DATABASE %[1]s TO %[3]s;`, ident(db), ident(authRole()), ident(ownerRole()), benchPassword)
	for _, n := range counts {
		setup += fmt.Sprintf("; CREATE ROLE %s LOGIN NOINHERIT", ident(appRole(n)))
	}
	for _, stmt := range strings.Split(setup, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := admin.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("fixture: %w", err)
		}
	}
	var secret string
	if err := admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", authRole()).Scan(&secret); err != nil {
		return fmt.Errorf("fixture: %w", err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA rolebench_auth;
		CREATE FUNCTION rolebench_auth.lookup(u text) RETURNS TABLE (usename text, passwd text)
			LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
			AS $$SELECT rolname::text, rolpassword FROM pg_authid
				WHERE rolname = u AND rolcanlogin AND rolname LIKE '%s\_%%'$$;
		REVOKE ALL ON FUNCTION rolebench_auth.lookup(text) FROM PUBLIC;
		GRANT USAGE ON SCHEMA rolebench_auth TO %[2]s;
		GRANT EXECUTE ON FUNCTION rolebench_auth.lookup(text) TO %[2]s`, prefix, ident(authRole()))); err != nil {
		return fmt.Errorf("fixture: auth function: %w", err)
	}
	const batch = 100
	for from := 0; from < tenants; from += batch {
		var sql strings.Builder
		var roles []string
		for i := from; i < min(from+batch, tenants); i++ {
			r, s := ident(roleName(i)), ident(schemaName(i))
			roles = append(roles, r)
			fmt.Fprintf(&sql, "CREATE ROLE %s LOGIN PASSWORD '%s';\n", r, secret)
			fmt.Fprintf(&sql, `SET ROLE %[3]s;
				CREATE SCHEMA %[2]s;
				CREATE TABLE %[2]s.items (id int PRIMARY KEY, v text NOT NULL);
				INSERT INTO %[2]s.items SELECT g, 'item ' || g FROM generate_series(1, 10) g;
				GRANT USAGE ON SCHEMA %[2]s TO %[1]s;
				GRANT SELECT, INSERT, UPDATE, DELETE ON %[2]s.items TO %[1]s;
				RESET ROLE;
			`, r, s, ident(ownerRole()))
		}
		for _, n := range counts {
			if k := min(len(roles), n-from); k > 0 {
				fmt.Fprintf(&sql, "GRANT %s TO %s;", strings.Join(roles[:k], ", "), ident(appRole(n)))
			}
		}
		if _, err := conn.Exec(ctx, "BEGIN; "+sql.String()+" COMMIT"); err != nil {
			return fmt.Errorf("fixture: tenants from %d: %w", from, err)
		}
	}
	return nil
}

// teardown drops database db and every role of the fixture. With the database gone
// the roles own nothing and hold no privilege, so DROP ROLE needs nothing else.
func teardown(ctx context.Context, admin *pgx.Conn, db string) error {
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(db)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("teardown: %w", err)
	}
	rows, err := admin.Query(ctx, `SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1`, prefix+`\_%`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for len(names) > 0 {
		n := min(500, len(names))
		var idents []string
		for _, name := range names[:n] {
			idents = append(idents, ident(name))
		}
		if _, err := admin.Exec(ctx, "DROP ROLE "+strings.Join(idents, ", ")); err != nil {
			return fmt.Errorf("teardown: %w", err)
		}
		names = names[n:]
	}
	return nil
}
