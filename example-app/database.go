package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/example-app/app"
	"github.com/tenantkit/tenant/internal/pgserver"
)

// demoDatabase is the database the private server holds for the app.
const demoDatabase = "tenant_example"

// open builds the app on DATABASE_URL or on the private server, which it starts (or
// joins, when a serve already runs it). demo reports the private server; closing
// stops what open started.
func open(ctx context.Context, env environment, autoCreate bool) (a *app.App, demo bool, closeAll func(), err error) {
	iso, err := isolation(env.getenv("ISOLATION"))
	if err != nil {
		return nil, false, nil, err
	}
	dsn := env.getenv("DATABASE_URL")
	stopServer := func() {}
	if dsn == "" {
		dsn, stopServer, err = privateServer(ctx, env)
		if err != nil {
			return nil, false, nil, err
		}
		demo = true
	}
	a, err = app.New(ctx, app.Config{DSN: dsn, AutoCreate: autoCreate, Isolation: iso})
	if err != nil {
		stopServer()
		return nil, false, nil, err
	}
	return a, demo, func() { a.Close(); stopServer() }, nil
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

func privateServer(ctx context.Context, env environment) (dsn string, stop func(), err error) {
	dir := env.getenv("DATA_DIR")
	if dir == "" {
		dir = ".data"
	}
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(dir, "postgres")})
	if errors.Is(err, pgserver.ErrNoBinaries) {
		return "", nil, fmt.Errorf("no DATABASE_URL and no PostgreSQL server binaries: %s", pgserver.InstallHint)
	}
	if err != nil {
		return "", nil, err
	}
	stop = func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintf(env.stderr, "example-app: stopping PostgreSQL: %v\n", err)
		}
	}
	if err := createDatabase(ctx, srv.URL, demoDatabase); err != nil {
		stop()
		return "", nil, err
	}
	return withDatabase(srv.URL, demoDatabase), stop, nil
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		return err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

func withDatabase(url, db string) string {
	cfg, _ := pgx.ParseConfig(url)
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, db)
}
