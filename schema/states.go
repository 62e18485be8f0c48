package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrSuspended is returned by Lookup for a suspended tenant: its schema is kept, and
// it is not served until Resume.
var ErrSuspended = errors.New("tenant is suspended")

// State is a tenant's state in the registry.
type State string

// The states a registered tenant is in.
const (
	// Active tenants are served.
	Active State = "active"
	// Suspended tenants are kept, migrated and listed, but not served: Lookup answers
	// ErrSuspended.
	Suspended State = "suspended"
)

// Info is a tenant's registration.
type Info struct {
	Name    string
	State   State
	Version int64 // the highest migration applied
	Created time.Time
	// Metadata is the application's JSON object (SetMetadata); "{}" when none.
	Metadata json.RawMessage
}

// Suspend marks an existing tenant suspended, without touching its schema: Lookup
// answers ErrSuspended, so a tenant.Manager answers its requests like an unknown
// tenant's (other processes within their admission cache's HitTTL). Suspending a
// suspended tenant changes nothing. ErrNotFound for a missing tenant.
func (p *Provisioner) Suspend(ctx context.Context, name string) error {
	return p.setState(ctx, name, Suspended)
}

// Resume makes a suspended tenant active again. Resuming an active tenant changes
// nothing. ErrNotFound for a missing tenant.
func (p *Provisioner) Resume(ctx context.Context, name string) error {
	return p.setState(ctx, name, Active)
}

func (p *Provisioner) setState(ctx context.Context, name string, s State) error {
	var then func(context.Context, pgx.Tx, Tenant) error
	var role string
	if p.roles != nil { // the role follows: no logins while suspended
		then = func(ctx context.Context, tx pgx.Tx, t Tenant) (err error) {
			if role, err = p.roleName(ctx, tx, t); err != nil {
				return err
			}
			return p.lockRole(ctx, tx, t, s == Suspended)
		}
	}
	err := p.update(ctx, "set state", name, "state = $2", string(s), then)
	if err == nil && p.roles != nil && s == Suspended {
		// Once NOLOGIN is committed: the sessions that logged in before it, idle or
		// let in behind the suspension, end (a request among them runs again and
		// finds the tenant suspended), and are gone when Suspend returns.
		err = awaitSessionsEnd(ctx, p.db, role)
	}
	return err
}

// SetMetadata merges metadata, which must marshal to a JSON object, into the tenant's
// metadata: its keys replace those of the same name, others stay. ErrNotFound for a
// missing tenant.
func (p *Provisioner) SetMetadata(ctx context.Context, name string, metadata any) error {
	raw, err := json.Marshal(metadata)
	if err != nil {
		return fmt.Errorf("schema: metadata of %q: %w", name, err)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("schema: metadata of %q must be a JSON object, not %s", name, raw)
	}
	return p.update(ctx, "set metadata", name, "metadata = metadata || $2::jsonb", string(raw), nil)
}

// update sets one thing in an existing tenant's registration, under the name's lock,
// then runs then (when not nil) in the same transaction.
func (p *Provisioner) update(ctx context.Context, what, name, set, value string, then func(context.Context, pgx.Tx, Tenant) error) error {
	if err := p.Validate(name); err != nil {
		return err
	}
	if err := p.existing(ctx, what, name); err != nil {
		return err
	}
	if err := p.ensureShared(ctx); err != nil {
		return err
	}
	err := p.retry(ctx, what, name, func() error {
		return inTx(ctx, p.db, func(tx pgx.Tx) error {
			st, err := inspect(ctx, tx, name)
			switch {
			case err != nil:
				return err
			case !st.exists:
				return fmt.Errorf("schema: %s %q: %w", what, name, ErrNotFound)
			case !st.ours:
				return fmt.Errorf("schema: %s %q: %w", what, name, ErrForeign)
			}
			if _, err = tx.Exec(ctx, "UPDATE "+registryTable+" SET "+set+" WHERE name = $1", execMode, name, value); err != nil || then == nil {
				return err
			}
			return then(ctx, tx, Tenant{Name: name, OID: st.oid, Version: st.version})
		})
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrForeign) {
		return fmt.Errorf("schema: %s %q: %w", what, name, err)
	}
	return err
}

// Info returns a tenant's registration, suspended or not. ErrNotFound when name is
// not a tenant.
func (p *Provisioner) Info(ctx context.Context, name string) (Info, error) {
	if err := p.Validate(name); err != nil {
		return Info{}, err
	}
	infos, err := p.infos(ctx, "t.name = $1", name)
	switch {
	case err != nil:
		return Info{}, fmt.Errorf("schema: info %q: %w", name, err)
	case len(infos) == 0:
		return Info{}, fmt.Errorf("schema: %q: %w", name, ErrNotFound)
	}
	return infos[0], nil
}

// ListInfo is List with each tenant's registration: one query over the registry.
func (p *Provisioner) ListInfo(ctx context.Context, namespace string) ([]Info, error) {
	if namespace != "" {
		if err := validateNamespace(namespace); err != nil {
			return nil, err
		}
	}
	infos, err := p.infos(ctx, "$1 = '' OR starts_with(t.name, $1 || '-')", namespace)
	if err != nil {
		return nil, fmt.Errorf("schema: list: %w", err)
	}
	out := infos[:0]
	for _, in := range infos {
		if p.Validate(in.Name) == nil {
			out = append(out, in)
		}
	}
	return out, nil
}

// infos reads the registrations matching where (with $1 = arg) whose schema exists,
// sorted by name; none before the registry exists.
func (p *Provisioner) infos(ctx context.Context, where, arg string) ([]Info, error) {
	sql := `SELECT t.name, t.state, t.version, t.created_at, t.metadata::text FROM ` + registryTable + ` t
		JOIN pg_catalog.pg_namespace n ON n.oid = t.schema_oid AND n.nspname = t.name
		WHERE t.state IN ('active', 'suspended') AND (` + where + `) ORDER BY t.name COLLATE "C"`
	out, err := p.readInfos(ctx, sql, arg)
	if p.upgradedFor(ctx, err) {
		out, err = p.readInfos(ctx, sql, arg)
	}
	if isUndefined(err) { // no registry yet: no tenants
		return nil, nil
	}
	return out, err
}

func (p *Provisioner) readInfos(ctx context.Context, sql, arg string) ([]Info, error) {
	rows, err := p.db.Query(ctx, sql, execMode, arg)
	if err != nil {
		return nil, err
	}
	var out []Info
	var in Info
	var meta string
	_, err = pgx.ForEachRow(rows, []any{&in.Name, &in.State, &in.Version, &in.Created, &meta}, func() error {
		in.Metadata = json.RawMessage(meta)
		out = append(out, in)
		return nil
	})
	return out, err
}
