package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/example-app/app"
)

// database is what open opened.
type database struct {
	app  *app.App
	demo bool   // the private server, not DATABASE_URL
	note string // what Ctrl-C stops, for serve's banner
	stop func() // closes the app, then stops what open started (or took over)
}

// open builds the app on DATABASE_URL or on the private server, which it starts (or
// joins, when a serve already runs it). serving is true for serve, which owns the
// private server it starts, and takes over one that a killed serve left running.
func open(ctx context.Context, env environment, autoCreate, serving bool) (*database, error) {
	iso, err := isolation(env.getenv("ISOLATION"))
	if err != nil {
		return nil, err
	}
	db := &database{note: "Ctrl-C stops the app", stop: func() {}}
	dsn := env.getenv("DATABASE_URL")
	if dsn == "" {
		var p *private
		if p, err = startPrivate(ctx, env, serving); err != nil {
			return nil, err
		}
		dsn, db.demo, db.note, db.stop = p.dsn, true, p.note, p.stop
	}
	a, err := app.New(ctx, app.Config{DSN: dsn, AutoCreate: autoCreate, Isolation: iso, RoleSecrets: roleSecrets(env)})
	if err != nil {
		db.stop()
		return nil, err
	}
	stopServer := db.stop
	db.app, db.stop = a, func() { a.Close(); stopServer() }
	return db, nil
}

// roleSecrets reads TENANT_ROLES_SECRET (and, during a rotation,
// TENANT_ROLES_OLD_SECRET): set, every tenant's requests run as a login role of its
// own (docs/security.md).
func roleSecrets(env environment) [][]byte {
	var secrets [][]byte
	for _, name := range []string{"TENANT_ROLES_SECRET", "TENANT_ROLES_OLD_SECRET"} {
		if v := env.getenv(name); v != "" {
			secrets = append(secrets, []byte(v))
		}
	}
	return secrets
}

// isolation reads ISOLATION: serializable (the default when empty), repeatable-read or
// read-committed; case, spaces and underscores do not matter.
func isolation(v string) (pgx.TxIsoLevel, error) {
	if v == "" {
		return pgx.Serializable, nil
	}
	level := pgx.TxIsoLevel(strings.ToLower(strings.NewReplacer("-", " ", "_", " ").Replace(strings.TrimSpace(v))))
	switch level {
	case pgx.Serializable, pgx.RepeatableRead, pgx.ReadCommitted:
		return level, nil
	}
	return "", fmt.Errorf("ISOLATION=%s: want serializable, repeatable-read or read-committed", v)
}
