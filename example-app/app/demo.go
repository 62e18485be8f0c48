package app

import (
	"context"
	"fmt"

	"github.com/tenantkit/tenant/locale"
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
// that exists is left as it is.
func (a *App) Seed(ctx context.Context) error {
	for _, name := range DemoTenants {
		created, err := a.mgr.Provisioner().CreateIfNotExists(ctx, name)
		if err != nil {
			return err
		}
		if !created {
			continue
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
