package schema

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// errHeld means another run holds the tenant's lock.
var errHeld = errors.New("held by another run")

// MigrateAll brings the shared schema (Config.SharedMigrations), then every tenant
// (suspended ones too), to the latest migration, as opts say. One query over the registry plans the run: a tenant already at the latest
// version costs nothing more. The others are migrated in parallel, each in its own
// transaction under its lock (as Migrate does), and a tenant that fails or stays busy
// beyond Config.LockTimeout is reported while the rest go on. When ctx ends, the run
// stops taking tenants, lets those under way roll back, and reports them pending
// (ErrInterrupted); running it again does only what is left. Two runs at once neither
// collide nor do a tenant twice: each skips the tenants the other holds, and comes back
// to them at the end, waiting, to find them done.
//
// The error, when not nil, is a *RunError; the Result counts in every case. A
// migration file added with a version below a tenant's is not seen by the plan: Migrate
// reports it (ErrMigrationOrder). With Config.Spares, it also starts the background
// refill of the stock, which brings the spares to the latest version (FillStock waits
// for that).
func (p *Provisioner) MigrateAll(ctx context.Context, opts RunOptions) (Result, error) {
	if err := p.ensureShared(ctx); err != nil {
		return Result{}, err
	}
	if err := p.migrateShared(ctx); err != nil { // ensureShared did once; a deploy may bring more
		return Result{}, err
	}
	if p.spares > 0 { // spares made by the previous release: the next sign-up wants them current
		p.refill()
	}
	infos, err := p.ListInfo(ctx, opts.Namespace)
	if err != nil {
		return Result{}, err
	}
	latest := p.latest()
	var pending []string
	for _, in := range infos {
		if in.Version < latest {
			pending = append(pending, in.Name)
		}
	}
	return p.run(ctx, opts, pending, len(infos)-len(pending), p.migrateOne)
}

// migrateOne is Migrate for one tenant of a run. Without wait it gives up at once when
// another run holds the tenant (busy).
func (p *Provisioner) migrateOne(ctx context.Context, name string, wait bool) (outcome, error) {
	var applied int
	err := p.retry(ctx, "migrate", name, func() error {
		applied = 0
		return inTx(ctx, p.db, func(tx pgx.Tx) error {
			if !wait {
				var got bool
				err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1, hashtext($2))", execMode, lockKey, name).Scan(&got)
				if err != nil || !got {
					return errors.Join(err, errHeld)
				}
			}
			st, err := inspect(ctx, tx, name)
			switch {
			case err != nil:
				return err
			case !st.ours:
				return ErrNotFound // dropped since the plan was made (or made again by someone else)
			}
			applied, err = p.migrate(ctx, tx, Tenant{Name: name, OID: st.oid, Version: st.version})
			return err
		})
	})
	switch {
	case errors.Is(err, errHeld):
		return busy, nil
	case errors.Is(err, ErrNotFound):
		return current, nil
	case errors.Is(err, ErrLocked):
		return locked, err
	case err != nil:
		return failed, fmt.Errorf("schema: migrate %q: %w", name, err)
	case applied > 0:
		return changed, nil
	}
	return current, nil
}

// ForEach calls fn for every active tenant, as opts say: in parallel, with progress
// reports, collecting failures while the rest go on, stopping when ctx ends. fn gets
// no transaction of its own (tenant.Manager.ForEach runs it in the tenant's request
// lifecycle). The error, when not nil, is a *RunError; the Result counts in every
// case (Changed: fn succeeded).
func (p *Provisioner) ForEach(ctx context.Context, opts RunOptions, fn func(ctx context.Context, name string) error) (Result, error) {
	infos, err := p.ListInfo(ctx, opts.Namespace)
	if err != nil {
		return Result{}, err
	}
	var names []string
	for _, in := range infos {
		if in.State == Active {
			names = append(names, in.Name)
		}
	}
	return p.run(ctx, opts, names, 0, func(ctx context.Context, name string, _ bool) (outcome, error) {
		if err := fn(ctx, name); err != nil {
			return failed, err // Failures and Progress name the tenant
		}
		return changed, nil
	})
}
