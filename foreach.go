package tenant

import (
	"context"

	"github.com/tenantkit/tenant/schema"
)

// ForEach runs fn for every active tenant as Run does: in the tenant's transaction,
// committed when fn returns nil, rolled back when it fails, conflicts run again,
// after-commit hooks run. Tenants run in parallel as opts say (by default on half the
// pool's connections), with progress reports; a tenant that fails is collected in the
// Result while the others go on, and when ctx ends the run stops taking tenants
// (schema.ErrInterrupted). The error, when not nil, is a *schema.RunError. Suspended
// tenants are skipped.
func (m *Manager) ForEach(ctx context.Context, opts schema.RunOptions, fn func(ctx context.Context) error, runOpts ...RunOption) (schema.Result, error) {
	return m.provisioner.ForEach(ctx, opts, func(ctx context.Context, name string) error {
		return m.Run(ctx, name, fn, runOpts...)
	})
}
