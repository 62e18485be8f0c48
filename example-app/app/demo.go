package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/tenantkit/tenant/locale"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// DemoTenants are provisioned by Seed.
var DemoTenants = []string{"acme", "globex"}

var demoDocuments = map[string][]locale.Text{
	"acme": {
		{"en": "Welcome to Acme", "de": "Willkommen bei Acme"},
		{"en": "Quarterly report", "de": "Quartalsbericht"},
		{"en": "Rocket skates: safety notes"},
	},
	"globex": {
		{"en": "Globex employee handbook", "de": "Globex-Mitarbeiterhandbuch"},
		{"de": "Nur auf Deutsch: Kantinenplan"},
	},
}

// Seed provisions the demo tenants; a tenant it creates gets the demo documents, one
// that exists only its pending migrations.
func (a *App) Seed(ctx context.Context) error {
	p := a.mgr.Provisioner()
	for _, name := range DemoTenants {
		err := p.Create(ctx, name)
		if errors.Is(err, schema.ErrExists) {
			if err := p.Ensure(ctx, name); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		err = a.mgr.Run(ctx, name, func(ctx context.Context) error {
			for _, title := range demoDocuments[name] {
				if _, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO documents (title) VALUES ($1)", title); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("seed %s: %w", name, err)
		}
	}
	return nil
}
