package schema

// Per-tenant login roles (Config.Roles): each tenant's requests log in as a role of
// its own, which may use its schema's tables and nothing else, so the database refuses
// a request's SQL (a qualified name, an injection) that reaches another tenant.
// docs/security.md has the threat model and the mechanisms rejected.

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Roles turns per-tenant login roles on (Config.Roles). The Provisioner's role must be
// able to create roles (CREATEROLE, or a superuser) and to end their sessions
// (pg_signal_backend), and must own the tenants' schemas.
type Roles struct {
	// Secrets derive the roles' passwords (HMAC-SHA256 of the role's name): none is
	// stored anywhere. The first sets passwords; the others are older ones that
	// logins still try, so that a rotation needs no downtime (docs/security.md).
	// At least one, of 32 bytes or more.
	Secrets [][]byte
}

// ErrRoles is wrapped by errors about per-tenant roles: a missing or short secret.
var ErrRoles = errors.New("schema: per-tenant roles")

func (r *Roles) check() error {
	if len(r.Secrets) == 0 {
		return fmt.Errorf("%w: no secret", ErrRoles)
	}
	for i, s := range r.Secrets {
		if len(s) < 32 {
			return fmt.Errorf("%w: secret %d is shorter than 32 bytes", ErrRoles, i)
		}
	}
	return nil
}

// RoleName is the login role of tenant t in the database whose OID is database:
// roles are cluster-wide, so the database is in the name, and the schema's OID is the
// tenant's (a spare renamed at sign-up keeps it). Fixed length, under PostgreSQL's
// 63 bytes whatever the tenant's name.
func RoleName(database uint32, t Tenant) string {
	return "tenant_" + strconv.FormatUint(uint64(database), 10) + "_" + strconv.FormatUint(uint64(t.OID), 10)
}

// groupRole is the role every tenant role of the database is a member of: it holds
// what all tenants may do beyond their own schema (reading shared tables).
func groupRole(database uint32) string {
	return "tenant_" + strconv.FormatUint(uint64(database), 10) + "_tenants"
}

// Password is the password of role under secret. It never leaves the process but as
// a SCRAM verifier (to the server) or in a login.
func Password(secret []byte, role string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(role))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// scramVerifier is what PostgreSQL stores for password (SCRAM-SHA-256, RFC 5802 and
// 7677): sent instead of the password, it keeps the password out of statements, the
// server's logs and pg_stat_statements.
func scramVerifier(password string) (string, error) {
	const iterations = 4096 // PostgreSQL's default (scram_iterations)
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacOf(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacOf(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + strconv.Itoa(iterations) + ":" + b64(salt) + "$" + b64(storedKey[:]) + ":" + b64(serverKey), nil
}

func hmacOf(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

// databaseOID is the OID of the database the Provisioner works in, asked once.
func (p *Provisioner) databaseOID(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (uint32, error) {
	if oid := p.dbOID.Load(); oid != 0 {
		return oid, nil
	}
	var oid uint32
	if err := q.QueryRow(ctx, "SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()", execMode).Scan(&oid); err != nil {
		return 0, err
	}
	p.dbOID.Store(oid)
	return oid, nil
}

// roleName is tenant t's login role in the Provisioner's database.
func (p *Provisioner) roleName(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, t Tenant) (string, error) {
	db, err := p.databaseOID(ctx, q)
	if err != nil {
		return "", err
	}
	return RoleName(db, t), nil
}

// Role returns the login role of tenant t, and its password under the secrets, newest
// first; ok is false when the Provisioner has no Roles.
func (p *Provisioner) Role(ctx context.Context, t Tenant) (role string, passwords []string, ok bool, err error) {
	if p.roles == nil {
		return "", nil, false, nil
	}
	if role, err = p.roleName(ctx, p.db, t); err != nil {
		return "", nil, true, err
	}
	for _, s := range p.roles.Secrets {
		passwords = append(passwords, Password(s, role))
	}
	return role, passwords, true, nil
}

// grantRole makes tenant t's login role, or brings one that exists back to what it
// should have, in the transaction that makes (or repairs) the tenant: login unless
// the tenant is suspended, the current password, no session defaults of its own
// making, membership in the group role and no other, USAGE on the schema, DML on its
// tables and sequences, including those later migrations make (default privileges of
// the Provisioner's role), and no write to the migration records or the marker.
func (p *Provisioner) grantRole(ctx context.Context, tx pgx.Tx, t Tenant, suspended bool) error {
	db, err := p.databaseOID(ctx, tx)
	if err != nil {
		return err
	}
	role, group := RoleName(db, t), groupRole(db)
	verifier, err := scramVerifier(Password(p.roles.Secrets[0], role))
	if err != nil {
		return err
	}
	r, g, s := pgx.Identifier{role}.Sanitize(), pgx.Identifier{group}.Sanitize(), pgx.Identifier{t.Name}.Sanitize()
	login := "LOGIN"
	if suspended {
		login = "NOLOGIN"
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)", execMode, role).Scan(&exists); err != nil {
		return err
	}
	// The verifier is a literal (utility statements take no parameters); it is not
	// the password, and nothing here is logged.
	if exists {
		// (A tenant's role cannot have given itself more attributes: that takes a
		// superuser, or CREATEROLE, which it lacks.)
		_, err = tx.Exec(ctx, "ALTER ROLE "+r+" "+login+" INHERIT PASSWORD "+quoteLiteral(verifier))
	} else {
		_, err = tx.Exec(ctx, "CREATE ROLE "+r+" "+login+" INHERIT PASSWORD "+quoteLiteral(verifier))
	}
	if err != nil {
		return err
	}
	if exists {
		// Defaults the role gave itself (ALTER ROLE itself SET role, search_path, …, for
		// the database or all) hold for every login: they go, and so do the sessions
		// that logged in under them.
		_, err = tx.Exec(ctx, `DO $$ DECLARE rid oid := (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = `+quoteLiteral(role)+`); BEGIN
			IF EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting WHERE setrole = rid)
			   OR EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members a JOIN pg_catalog.pg_roles b ON b.oid = a.roleid
			              WHERE a.member = rid AND b.rolname <> `+quoteLiteral(group)+`) THEN
				EXECUTE format('ALTER ROLE %I RESET ALL', `+quoteLiteral(role)+`);
				EXECUTE format('ALTER ROLE %I IN DATABASE %I RESET ALL', `+quoteLiteral(role)+`, current_database());
				PERFORM pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = `+quoteLiteral(role)+` AND pid <> pg_backend_pid();
			END IF; END $$`)
		if err != nil {
			return err
		}
	}
	marker := VersionMarker(t).Sanitize()
	_, err = tx.Exec(ctx, `DO $$ DECLARE m text; BEGIN
		FOR m IN SELECT b.rolname FROM pg_catalog.pg_auth_members a JOIN pg_catalog.pg_roles b ON b.oid = a.roleid
			WHERE a.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = `+quoteLiteral(role)+`) AND b.rolname <> `+quoteLiteral(group)+`
		LOOP EXECUTE format('REVOKE %I FROM %I', m, `+quoteLiteral(role)+`); END LOOP; END $$;
		GRANT `+g+` TO `+r+`;
		GRANT USAGE ON SCHEMA `+s+` TO `+r+`;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA `+s+` TO `+r+`;
		GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA `+s+` TO `+r+`;
		ALTER DEFAULT PRIVILEGES IN SCHEMA `+s+` GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO `+r+`;
		ALTER DEFAULT PRIVILEGES IN SCHEMA `+s+` GRANT USAGE, SELECT ON SEQUENCES TO `+r+`;
		REVOKE INSERT, UPDATE, DELETE ON `+pgx.Identifier{t.Name, VersionTable}.Sanitize()+`, `+marker+` FROM `+r)
	return err
}

// ensureGroup makes the database's group role of tenants, with SELECT on the shared
// tables (those made later too). CONNECT and TEMPORARY on the databases stay as the
// cluster's administrator set them (docs/security.md suggests what to revoke).
func (p *Provisioner) ensureGroup(ctx context.Context, tx pgx.Tx) error {
	db, err := p.databaseOID(ctx, tx)
	if err != nil {
		return err
	}
	group := groupRole(db)
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)", execMode, group).Scan(&exists); err != nil {
		return err
	}
	g := pgx.Identifier{group}.Sanitize()
	sql := ""
	if !exists {
		sql = "CREATE ROLE " + g + " NOLOGIN;"
	}
	if sql == "" && len(p.sharedMigrations) == 0 {
		return nil
	}
	if len(p.sharedMigrations) > 0 {
		sql += "CREATE SCHEMA IF NOT EXISTS " + SharedSchema + "; GRANT USAGE ON SCHEMA " + SharedSchema + " TO " + g +
			"; GRANT SELECT ON ALL TABLES IN SCHEMA " + SharedSchema + " TO " + g +
			"; ALTER DEFAULT PRIVILEGES IN SCHEMA " + SharedSchema + " GRANT SELECT ON TABLES TO " + g + ";"
	}
	_, err = tx.Exec(ctx, sql)
	return err
}

// dropRole ends the sessions of tenant t's role and drops it, with what it was granted
// in this database, in the transaction that drops the tenant.
func (p *Provisioner) dropRole(ctx context.Context, tx pgx.Tx, t Tenant) error {
	role, err := p.roleName(ctx, tx, t)
	if err != nil {
		return err
	}
	if err := endSessions(ctx, tx, role); err != nil {
		return err
	}
	r := pgx.Identifier{role}.Sanitize()
	_, err = tx.Exec(ctx, `DO $$ BEGIN
		IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = `+quoteLiteral(role)+`) THEN
			EXECUTE 'DROP OWNED BY `+r+`';
			EXECUTE 'DROP ROLE `+r+`';
		END IF; END $$`)
	return err
}

// lockRole allows or refuses tenant t's logins. Refusing, it first waits for the
// tenant's requests in flight (the version marker, as a migration does), so that they
// finish; the sessions are ended after the commit (endSessions).
func (p *Provisioner) lockRole(ctx context.Context, tx pgx.Tx, t Tenant, suspended bool) error {
	role, err := p.roleName(ctx, tx, t)
	if err != nil {
		return err
	}
	login := "LOGIN"
	if suspended {
		login = "NOLOGIN"
		if err := ensureMarker(ctx, tx, t); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE "+VersionMarker(t).Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `DO $$ BEGIN
		IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = `+quoteLiteral(role)+`) THEN
			EXECUTE 'ALTER ROLE `+pgx.Identifier{role}.Sanitize()+` `+login+`';
		END IF; END $$`)
	return err
}

// endSessions ends the sessions of role, but q's own.
func endSessions(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, role string) error {
	_, err := q.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", execMode, role)
	return err
}

// sessionsEndWithin bounds how long awaitSessionsEnd waits.
const sessionsEndWithin = 5 * time.Second

// awaitSessionsEnd ends the sessions of role and waits until they are gone:
// pg_terminate_backend only signals, and a backend leaves pg_stat_activity a moment
// later (PostgreSQL 14's timeout argument would wait, 13 has none). Each round ends
// them again and reads the activity afresh, outside any transaction's snapshot.
func awaitSessionsEnd(ctx context.Context, db DB, role string) error {
	deadline := time.Now().Add(sessionsEndWithin)
	for {
		if err := endSessions(ctx, db, role); err != nil {
			return err
		}
		var left int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", execMode, role).Scan(&left); err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("schema: %d sessions of the role %s still running %v after they were ended", left, role, sessionsEndWithin)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// quoteLiteral quotes s as an SQL string literal: only for values this package made
// (role names of digits, SCRAM verifiers of base64), never for input.
func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// RepairRoles brings every tenant's role (spares' too) to what it should have, one
// transaction each: it makes a missing one (tenants made before Config.Roles was set),
// sets the password of the first secret (the second step of a rotation), login as
// the tenant's state allows, no session defaults the tenant set itself, and the
// grants. It returns how many roles it repaired; ErrRoles without Config.Roles.
func (p *Provisioner) RepairRoles(ctx context.Context) (int, error) {
	if p.roles == nil {
		return 0, fmt.Errorf("%w: the Provisioner has no Roles", ErrRoles)
	}
	if err := p.ensureShared(ctx); err != nil {
		return 0, err
	}
	rows, err := p.db.Query(ctx, `SELECT t.name FROM `+registryTable+` t ORDER BY t.name`, execMode)
	if err != nil {
		return 0, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	if err := p.pruneRoles(ctx); err != nil {
		return 0, err
	}
	repaired := 0
	for _, name := range names {
		var done bool
		err := p.retry(ctx, "repair role", name, func() error {
			done = false
			return inTx(ctx, p.db, func(tx pgx.Tx) (err error) {
				done, err = p.repairRole(ctx, tx, name)
				return err
			})
		})
		if err != nil {
			return repaired, fmt.Errorf("schema: repair the role of %q: %w", name, err)
		}
		if done {
			repaired++
		}
	}
	return repaired, nil
}

// pruneRoles drops the tenant roles of this database that no registered tenant has:
// those of schemas dropped by hand, which could still log in and read shared tables.
func (p *Provisioner) pruneRoles(ctx context.Context) error {
	db, err := p.databaseOID(ctx, p.db)
	if err != nil {
		return err
	}
	prefix := "tenant_" + strconv.FormatUint(uint64(db), 10) + "_"
	rows, err := p.db.Query(ctx, `SELECT rolname::text FROM pg_catalog.pg_roles
		WHERE starts_with(rolname, $1) AND rolname <> $2
		  AND NOT EXISTS (SELECT 1 FROM `+registryTable+` t WHERE $1 || t.schema_oid::text = rolname)`, execMode, prefix, groupRole(db))
	if err != nil {
		return err
	}
	orphans, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, role := range orphans {
		oid, err := strconv.ParseUint(role[len(prefix):], 10, 32)
		if err != nil {
			continue // not a name this package makes
		}
		if err := inTx(ctx, p.db, func(tx pgx.Tx) error { return p.dropRole(ctx, tx, Tenant{OID: uint32(oid)}) }); err != nil {
			return fmt.Errorf("schema: drop the role %s of no tenant: %w", role, err)
		}
		p.log.InfoContext(ctx, "dropped the role of no tenant", slog.String("role", role))
	}
	return nil
}

// repairRole repairs the role of tenant name under the name's lock, as the tenant is
// then (suspended or not); done is false for a tenant dropped meanwhile.
func (p *Provisioner) repairRole(ctx context.Context, tx pgx.Tx, name string) (done bool, err error) {
	st, err := inspect(ctx, tx, name)
	if err != nil || !st.exists || !st.ours {
		return false, err
	}
	var state State
	if err := tx.QueryRow(ctx, "SELECT state FROM "+registryTable+" WHERE name = $1", execMode, name).Scan(&state); err != nil {
		return false, err
	}
	return true, p.grantRole(ctx, tx, Tenant{Name: name, OID: st.oid, Version: st.version}, state == Suspended)
}
