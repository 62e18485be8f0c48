package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/tenantkit/tenant/internal/benchdb"
	"github.com/tenantkit/tenant/schema"
)

// provisionWorkers bounds the tenants provisioned at once.
const provisionWorkers = 4

// tenantName names the i-th tenant of a run.
func tenantName(i int) string { return fmt.Sprintf("bench_%03d", i) }

// prepareDatabase makes the run's database when missing and provisions its tenants:
// the example app's migrations, so that every server (the example app too) reads the
// same table, and documents 1..n in each. It returns the database's connection string
// and the server's version.
func prepareDatabase(ctx context.Context, cfg config, root string) (dsn, version string, err error) {
	dsn = cfg.dsn
	if cfg.database != "" {
		if err := benchdb.Create(ctx, cfg.dsn, cfg.database); err != nil {
			return "", "", fmt.Errorf("create database %s (or pass -db \"\" to use the DSN's own): %w", cfg.database, err)
		}
		dsn = withDatabase(cfg.dsn, cfg.database)
	}
	p, err := pgxpool.New(ctx, withParam(dsn, "pool_max_conns", fmt.Sprint(provisionWorkers)))
	if err != nil {
		return "", "", err
	}
	defer p.Close()
	if err := p.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return "", "", err
	}
	prov, err := schema.NewProvisioner(p, schema.Config{
		Migrations: os.DirFS(filepath.Join(root, "example-app", "app", "migrations")),
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return "", "", err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(provisionWorkers)
	for i := range cfg.maxTenants() {
		g.Go(func() error { return provisionTenant(gctx, p, prov, tenantName(i), cfg.documents) })
	}
	return dsn, version, g.Wait()
}

// provisionTenant makes name a tenant at the latest migration with documents 1..n.
// A schema of that name that is not a tenant, or that the migrations cannot bring up
// to date, is dropped and provisioned again: the database is the benchmark's own.
func provisionTenant(ctx context.Context, p *pgxpool.Pool, prov *schema.Provisioner, name string, n int) error {
	if err := prov.Ensure(ctx, name); err != nil {
		if ctx.Err() != nil {
			return err
		}
		var again error
		if errors.Is(err, schema.ErrForeign) {
			_, again = p.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		} else {
			again = prov.Drop(ctx, name)
		}
		if again == nil {
			again = prov.Ensure(ctx, name)
		}
		if again != nil {
			return fmt.Errorf("provision %s: %w (dropped and provisioned again: %w)", name, err, again)
		}
	}
	_, err := p.Exec(ctx, "INSERT INTO "+pgx.Identifier{name, "documents"}.Sanitize()+` (id, title)
		SELECT i, jsonb_build_object('en', 'Document ' || i, 'de', 'Dokument ' || i) FROM generate_series(1, $1::int) AS i
		ON CONFLICT (id) DO NOTHING`, n)
	if err != nil {
		return fmt.Errorf("documents of %s: %w", name, err)
	}
	return nil
}
