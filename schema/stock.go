package schema

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// ErrStockUnsafe is wrapped by FillStock's error when a spare made by the migrations
// keeps its own schema name as text (a function's body or its SET search_path FROM
// CURRENT, a comment, a trigger's arguments): renamed for a tenant it would still
// point at the old name, so no spare is kept and every tenant is made by its
// migrations.
var ErrStockUnsafe = errors.New("migrations write the schema's name into it: no spare schemas are kept")

// spareState is the registry state of a spare: never served, listed, migrated by
// MigrateAll, dropped or adopted, whatever its name.
const spareState = "spare"

// sparePrefix starts every spare's name. The "--" makes Validate refuse it, so no
// caller can name, take or resolve a spare: only the registry's state finds them.
const sparePrefix = "spare--"

// stockLock is the advisory lock (second key) that serializes the stock's upkeep
// across processes, so that two refills never make more spares than asked for.
const stockLock = 1

// spareName is a new spare's name: the prefix and 16 random hex digits.
func spareName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return sparePrefix + hex.EncodeToString(b)
}

// takeSpare hands a spare at the latest version over to the tenant name, inside the
// provisioning transaction that holds name's lock: the spare's schema is renamed and
// its registry row becomes the tenant's. ok is false when no spare is at hand. SKIP
// LOCKED makes concurrent sign-ups take distinct spares, and never wait for the
// upkeep, which locks a spare's row before it migrates or drops it.
func (p *Provisioner) takeSpare(ctx context.Context, tx pgx.Tx, name string) (t Tenant, ok bool, err error) {
	var spare string
	t = Tenant{Name: name, Version: p.latest()}
	err = tx.QueryRow(ctx, `SELECT t.name, t.schema_oid FROM `+registryTable+` t
		JOIN pg_catalog.pg_namespace n ON n.oid = t.schema_oid AND n.nspname = t.name
		WHERE t.state = '`+spareState+`' AND t.version = $1
		ORDER BY t.created_at LIMIT 1 FOR UPDATE OF t SKIP LOCKED`, execMode, t.Version).Scan(&spare, &t.OID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, false, nil
	}
	if err != nil {
		return Tenant{}, false, err
	}
	// A stale row of the tenant's name (its schema dropped by hand) goes, as register
	// does on the slow path. The version marker is named by OID and version: the rename
	// keeps it right.
	if _, err := tx.Exec(ctx, "DELETE FROM "+registryTable+" WHERE name = $1", execMode, name); err != nil {
		return Tenant{}, false, err
	}
	if _, err := tx.Exec(ctx, "ALTER SCHEMA "+pgx.Identifier{spare}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return Tenant{}, false, err
	}
	_, err = tx.Exec(ctx, "UPDATE "+registryTable+" SET name = $2, state = 'active', created_at = now() WHERE name = $1",
		execMode, spare, name)
	return t, err == nil, err
}

// FillStock brings the stock of spare schemas to Config.Spares and returns when it is
// there, one transaction per step: it drops the spares beyond Config.Spares (so with
// Spares 0 it empties the stock), migrates spares left at an older version, and makes
// the missing ones. A spare whose migrations fail stays at its version, never handed
// out, and the error says why. Spares of a later version (a newer release's, during a
// rolling deploy) are counted and left alone. Processes that fill at once take turns.
// After a sign-up takes a spare, or finds none, the Provisioner runs it in the
// background (Close stops that), and MigrateAll starts that too; an application may
// call it at start-up, and a deploy after MigrateAll, to wait until the first sign-ups
// find spares at the new version.
func (p *Provisioner) FillStock(ctx context.Context) error {
	if err := p.ensureShared(ctx); err != nil {
		return err
	}
	// Each step trims all the excess at once, or migrates or makes one spare, so a
	// stock that settles does within this many; one that does not is being refilled to
	// another size, or at another version, by another process at the same time.
	for range 2*p.spares + 4 {
		var done bool
		err := p.retry(ctx, "fill stock", sparePrefix, func() error {
			return inTx(ctx, p.db, func(tx pgx.Tx) error {
				var err error
				done, err = p.stockStep(ctx, tx)
				return err
			})
		})
		switch {
		case errors.Is(err, ErrStockUnsafe):
			return err
		case err != nil:
			return fmt.Errorf("schema: fill stock: %w", err)
		case done:
			return nil
		}
	}
	return fmt.Errorf("schema: fill stock: %w", errUnsettled)
}

// errUnsettled is FillStock's error when other processes keep changing the stock.
var errUnsettled = errors.New("the stock did not settle: do other processes run with other Spares or migrations?")

// stockStep does one thing toward the stock, under the stock's lock, and reports done
// when nothing was left to do.
func (p *Provisioner) stockStep(ctx context.Context, tx pgx.Tx) (done bool, err error) {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", execMode, lockKey, stockLock); err != nil {
		return false, err
	}
	// Rows of spares whose schema was dropped by hand.
	if _, err := tx.Exec(ctx, `DELETE FROM `+registryTable+` t WHERE t.state = '`+spareState+`'
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.oid = t.schema_oid AND n.nspname = t.name)`, execMode); err != nil {
		return false, err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+registryTable+` t
		JOIN pg_catalog.pg_namespace n ON n.oid = t.schema_oid AND n.nspname = t.name
		WHERE t.state = '`+spareState+`'`, execMode).Scan(&n); err != nil {
		return false, err
	}
	if n > p.spares { // too many: old ones first, then the oldest; a newer release's stay
		extra, err := p.lockSpares(ctx, tx, "t.version <= $1", "t.version = $1, t.created_at", n-p.spares)
		for _, spare := range extra {
			err = errors.Join(err, p.dropSpare(ctx, tx, spare))
		}
		return len(extra) == 0, err
	}
	switch stale, err := p.lockSpares(ctx, tx, "t.version < $1", "t.created_at", 1); {
	case err != nil:
		return false, err
	case len(stale) > 0:
		return false, p.upgradeSpare(ctx, tx, stale[0])
	case n == p.spares:
		return true, nil
	}
	return false, p.makeSpare(ctx, tx)
}

// lockSpares locks up to limit spares matching where ($1 is the latest version),
// skipping those another transaction holds.
func (p *Provisioner) lockSpares(ctx context.Context, tx pgx.Tx, where, order string, limit int) ([]Tenant, error) {
	rows, err := tx.Query(ctx, `SELECT t.name, t.schema_oid, t.version FROM `+registryTable+` t
		JOIN pg_catalog.pg_namespace n ON n.oid = t.schema_oid AND n.nspname = t.name
		WHERE t.state = '`+spareState+`' AND `+where+`
		ORDER BY `+order+` LIMIT $2 FOR UPDATE OF t SKIP LOCKED`, execMode, p.latest(), limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Tenant])
}

// makeSpare makes one spare exactly as the slow path makes a tenant (schema, version
// table, marker, registration, every migration), under a name no tenant can have, and
// checks that nothing in it keeps that name.
func (p *Provisioner) makeSpare(ctx context.Context, tx pgx.Tx) error {
	t, err := p.createSchema(ctx, tx, spareName())
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "UPDATE "+registryTable+" SET state = '"+spareState+"' WHERE name = $1", execMode, t.Name); err != nil {
		return err
	}
	if _, err := p.migrate(ctx, tx, t); err != nil {
		return err
	}
	return p.checkSpare(ctx, tx, t)
}

// upgradeSpare brings a spare left at an older version to the latest, as Migrate
// would a tenant. When that fails, the spare stays at its version (and is never
// handed out) and the error is FillStock's: the migrations would fail for tenants too.
// Dropping it instead would let two releases undo each other's refills forever.
func (p *Provisioner) upgradeSpare(ctx context.Context, tx pgx.Tx, t Tenant) error {
	if _, err := p.migrate(ctx, tx, t); err != nil {
		return fmt.Errorf("spare %q: %w", t.Name, err)
	}
	t.Version = p.latest()
	return p.checkSpare(ctx, tx, t)
}

// dropSpare drops a spare whose row the transaction has locked, with its role.
func (p *Provisioner) dropSpare(ctx context.Context, tx pgx.Tx, t Tenant) error {
	name := t.Name
	if _, err := tx.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		return err
	}
	if p.roles != nil {
		if err := p.dropRole(ctx, tx, t); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, "DELETE FROM "+registryTable+" WHERE name = $1 AND state = '"+spareState+"'", execMode, name)
	return err
}

// checkSpare refuses a spare in which the migrations left its own name as text, which
// a rename does not change. What PostgreSQL keeps by OID (defaults and their
// sequences, identity columns, views, constraints, indexes, triggers' functions)
// follows a rename; text does not. Deparsed with the spare's search_path, the spare's
// own objects come out unqualified, so its name appears only where it was written.
func (p *Provisioner) checkSpare(ctx context.Context, tx pgx.Tx, t Tenant) error {
	if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", execMode, SearchPath(t.Name)); err != nil {
		return err
	}
	var what string
	err := tx.QueryRow(ctx, `SELECT what FROM (
		SELECT 'function '||p.oid::regprocedure AS what, coalesce(p.prosrc, '')||' '||coalesce(array_to_string(p.proconfig, ' '), '') AS def
			FROM pg_catalog.pg_proc p WHERE p.pronamespace = $1
		UNION ALL SELECT 'default of '||a.adrelid::regclass, pg_catalog.pg_get_expr(a.adbin, a.adrelid)
			FROM pg_catalog.pg_attrdef a JOIN pg_catalog.pg_class c ON c.oid = a.adrelid WHERE c.relnamespace = $1
		UNION ALL SELECT 'constraint '||conname, pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint WHERE connamespace = $1
		UNION ALL SELECT 'view '||relname, pg_catalog.pg_get_viewdef(oid) FROM pg_catalog.pg_class WHERE relnamespace = $1 AND relkind IN ('v', 'm')
		UNION ALL SELECT 'trigger '||t.tgname, encode(t.tgargs, 'escape')
			FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1
		UNION ALL SELECT 'comment on '||c.relname, d.description
			FROM pg_catalog.pg_description d JOIN pg_catalog.pg_class c ON d.classoid = 'pg_catalog.pg_class'::regclass AND d.objoid = c.oid
			WHERE c.relnamespace = $1) s
		WHERE strpos(def, $2) > 0 LIMIT 1`, execMode, t.OID, t.Name[len(sparePrefix):]).Scan(&what)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("schema: %w: %s names %s", ErrStockUnsafe, what, strconv.Quote(t.Name))
}

// stock runs the background refill: at most one at a time, started on demand (no
// goroutine while the stock needs nothing), stopped by Close.
type stock struct {
	ctx    context.Context // ends at Close: a refill under way rolls back
	cancel context.CancelFunc
	unsafe atomic.Bool // ErrStockUnsafe seen: refilling is pointless

	mu      sync.Mutex
	running bool // a refill goroutine is at work
	again   bool // asked again meanwhile: it runs once more
	closed  bool
	wg      sync.WaitGroup
}

func (s *stock) init() { s.ctx, s.cancel = context.WithCancel(context.Background()) }

// refill starts a background FillStock, or asks the one under way for another round
// (the take it was started for may have raced with it). It never waits.
func (p *Provisioner) refill() {
	s := &p.stock
	if s.unsafe.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
	case s.running:
		s.again = true
	default:
		s.running = true
		s.wg.Add(1)
		go p.refillLoop()
	}
}

// refillLoop fills the stock until no one asked again. Errors are logged: the next
// sign-up asks again. A panic is logged too, not raised: it would end the process for
// the sake of a spare.
func (p *Provisioner) refillLoop() {
	s := &p.stock
	defer s.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("tenant schema: the stock's refill panicked", slog.Any("panic", r))
			s.mu.Lock()
			s.running = false
			s.mu.Unlock()
		}
	}()
	for {
		err := p.FillStock(s.ctx)
		switch {
		case errors.Is(err, ErrStockUnsafe):
			s.unsafe.Store(true)
			p.log.Error("tenant schema: no spare schemas are kept, sign-ups run the migrations", slog.Any("error", err))
		case err != nil && s.ctx.Err() == nil:
			p.log.Warn("tenant schema: refilling the stock failed", slog.Any("error", err))
		}
		s.mu.Lock()
		if err != nil || !s.again || s.closed {
			s.running, s.again = false, false
			s.mu.Unlock()
			return
		}
		s.again = false
		s.mu.Unlock()
	}
}

// Close stops the background refill of the stock and waits for it; a spare being
// made rolls back. Spares in stock stay, and sign-ups still take them; FillStock still
// works when called. It is safe to call more than once, and does nothing without a
// stock. A Provisioner made with Spares must be closed before its DB is.
func (p *Provisioner) Close() {
	s := &p.stock
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}
