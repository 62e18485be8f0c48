package tenant

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/changes"
)

// Subscribe returns the change signals f matches (one schema, one table, or all): the
// rows inserted, updated and deleted in tables a migration tracked
// (tenant_registry.track_changes), delivered after their transaction commits, by this
// process or any other. The first Subscribe opens the listening connection (Config.ChangesDSN),
// which Close closes with every subscription. See package changes.
func (m *Manager) Subscribe(ctx context.Context, f changes.Filter) (*changes.Subscription, error) {
	return m.feed.Subscribe(ctx, f)
}

// newFeed is the Manager's change feed, on dsn, else on the pool's connection settings.
func newFeed(p *pgxpool.Pool, dsn string, log *slog.Logger) (*changes.Feed, error) {
	cfg := p.Config().ConnConfig
	if dsn != "" {
		var err error
		if cfg, err = pgx.ParseConfig(dsn); err != nil {
			return nil, fmt.Errorf("tenant: ChangesDSN: %w", err)
		}
	}
	return changes.NewFeed(cfg, log), nil
}
