package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/internal/pgserver"
)

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// timeConnect returns the median time pgx.Connect takes to log in as user with
// password on url (the user's role as it would open a connection for a request), over n
// connections.
func timeConnect(ctx context.Context, url, user, password string, n int) (time.Duration, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return 0, err
	}
	cfg.User, cfg.Password = user, password
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	var ds []time.Duration
	for range n {
		start := time.Now()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return 0, fmt.Errorf("connect as %s: %w", user, err)
		}
		ds = append(ds, time.Since(start))
		_ = c.Close(ctx)
	}
	return median(ds), nil
}

// connectRate returns how many connections per second workers goroutines open (and
// close) as user on url for d: the server's rate of backend starts, which bounds a
// mode that opens a connection for nearly every request.
func connectRate(ctx context.Context, url, user string, workers int, d time.Duration) (float64, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return 0, err
	}
	cfg.User, cfg.Password = user, benchPassword
	var mu sync.Mutex
	var n int
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < d {
				c, err := pgx.ConnectConfig(ctx, cfg)
				mu.Lock()
				if err != nil {
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					return
				}
				n++
				mu.Unlock()
				_ = c.Close(ctx)
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), firstErr
}

// firstRequests returns the median time of a tenant's first one-query transaction and
// of its second, over n tenants: on a new backend logged in as the tenant's role
// (fresh), or on one long-lived backend of the owner that has not served the tenant
// yet (shared, the default mode's miss).
func firstRequests(ctx context.Context, dbURL string, n int) (fresh, shared [2]time.Duration, err error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return fresh, shared, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	owner := cfg.Copy()
	owner.User = ownerRole()
	oc, err := pgx.ConnectConfig(ctx, owner)
	if err != nil {
		return fresh, shared, err
	}
	defer func() { _ = oc.Close(ctx) }()
	var f1, f2, s1, s2 []time.Duration
	for i := range n {
		t := cfg.Copy()
		t.User, t.Password = roleName(i), benchPassword
		c, err := pgx.ConnectConfig(ctx, t)
		if err != nil {
			return fresh, shared, err
		}
		for _, run := range []struct {
			c   *pgx.Conn
			out *[]time.Duration
		}{{c, &f1}, {c, &f2}, {oc, &s1}, {oc, &s2}} {
			start := time.Now()
			// Tenants n.. for the owner's backend: it met none of them before.
			tenant := i
			if run.c == oc {
				tenant = n + i
			}
			if err := request(ctx, run.c, tenant, 1, false); err != nil {
				return fresh, shared, err
			}
			*run.out = append(*run.out, time.Since(start))
		}
		_ = c.Close(ctx)
	}
	return [2]time.Duration{median(f1), median(f2)}, [2]time.Duration{median(s1), median(s2)}, nil
}

// scramConnect starts a throwaway cluster whose pg_hba.conf asks every role but
// postgres for a SCRAM password over TCP, and returns the median connection time as
// postgres (trust) and as a role with a SCRAM password, on the same server.
func scramConnect(ctx context.Context, n int) (trust, scram time.Duration, err error) {
	srv, err := pgserver.Start(ctx, pgserver.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = srv.Stop() }()
	hba := "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	// Written over the file initdb made, which keeps its owner (the server's user).
	if err := os.WriteFile(filepath.Join(srv.Dir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return 0, 0, err
	}
	admin, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = admin.Close(ctx) }()
	if _, err := admin.Exec(ctx, "SET password_encryption = 'scram-sha-256'; CREATE ROLE scram_tenant LOGIN PASSWORD 'bench'; SELECT pg_reload_conf()"); err != nil {
		return 0, 0, err
	}
	time.Sleep(200 * time.Millisecond) // the postmaster rereads pg_hba.conf on SIGHUP
	if _, err := timeConnect(ctx, srv.URL, "scram_tenant", "wrong", 1); err == nil {
		return 0, 0, fmt.Errorf("scram: a wrong password logged in: pg_hba.conf was not applied")
	}
	if trust, err = timeConnect(ctx, srv.URL, "postgres", "", n); err != nil {
		return 0, 0, err
	}
	scram, err = timeConnect(ctx, srv.URL, "scram_tenant", "bench", n)
	return trust, scram, err
}

// grantCosts returns the median time, over n, of making a tenant's role for an
// existing schema of 20 tables (each with a serial), in one transaction: CREATE ROLE
// with a SCRAM secret computed beforehand, USAGE on the schema, DML on its tables and
// sequences, and the default privileges for the tables later migrations add; the same
// with a plaintext password (the server computes the secret); and, as the baseline,
// making the schema's 20 tables.
func grantCosts(ctx context.Context, dbURL string, n int) (withSecret, withPlain, tables time.Duration, err error) {
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() { _ = c.Close(ctx) }()
	var secret string
	if err := c.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", authRole()).Scan(&secret); err != nil {
		return 0, 0, 0, err
	}
	makeTables := func(schema string) string {
		sql := fmt.Sprintf("BEGIN; SET LOCAL ROLE %s; CREATE SCHEMA %s;", ident(ownerRole()), schema)
		for i := range 20 {
			sql += fmt.Sprintf(" CREATE TABLE %s.t%02d (id serial PRIMARY KEY, a int NOT NULL, b text, c timestamptz DEFAULT now());", schema, i)
		}
		return sql + " COMMIT"
	}
	timed := func(sql, cleanup string) (time.Duration, error) {
		start := time.Now()
		if _, err := c.Exec(ctx, sql); err != nil {
			return 0, err
		}
		d := time.Since(start)
		_, err := c.Exec(ctx, cleanup)
		return d, err
	}
	if _, err := c.Exec(ctx, makeTables("rb_grants")); err != nil {
		return 0, 0, 0, err
	}
	const grants = `BEGIN; CREATE ROLE rb_grantee LOGIN PASSWORD '%[2]s';
		GRANT USAGE ON SCHEMA rb_grants TO rb_grantee;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rb_grants TO rb_grantee;
		GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA rb_grants TO rb_grantee;
		ALTER DEFAULT PRIVILEGES FOR ROLE %[1]s IN SCHEMA rb_grants GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO rb_grantee;
		ALTER DEFAULT PRIVILEGES FOR ROLE %[1]s IN SCHEMA rb_grants GRANT USAGE, SELECT ON SEQUENCES TO rb_grantee;
		COMMIT`
	const dropGrantee = "DROP OWNED BY rb_grantee; DROP ROLE rb_grantee"
	grantee := ident(prefix + "_grantee") // cluster-wide: named for teardown to find
	var ds [3][]time.Duration
	for range n {
		for k, sql := range []string{fmt.Sprintf(grants, ident(ownerRole()), secret), fmt.Sprintf(grants, ident(ownerRole()), benchPassword)} {
			sql = strings.ReplaceAll(sql, "rb_grantee", grantee)
			d, err := timed(sql, strings.ReplaceAll(dropGrantee, "rb_grantee", grantee))
			if err != nil {
				return 0, 0, 0, fmt.Errorf("grants: %w", err)
			}
			ds[k] = append(ds[k], d)
		}
		d, err := timed(makeTables("rb_tables"), "DROP SCHEMA rb_tables CASCADE")
		if err != nil {
			return 0, 0, 0, fmt.Errorf("tables: %w", err)
		}
		ds[2] = append(ds[2], d)
	}
	return median(ds[0]), median(ds[1]), median(ds[2]), nil
}
