package tenant

import (
	"context"
	"fmt"

	"github.com/tenantkit/tenant/tenantctx"
)

// AllowSharedWrites lets the rest of the request's (or Run's) transaction write the
// tables of the shared schema (Config.SharedMigrations), which a tenant's transaction
// may otherwise only read: the guard on each shared table refuses the write with
// SQLSTATE 42501. Call it where a handler means to change data of every tenant (a
// sign-up that writes shared.users), so that one that names a shared table by mistake
// fails. It is a guard against accidents, not a permission: it ends with the
// transaction.
func AllowSharedWrites(ctx context.Context) error {
	if _, err := tenantctx.Session(ctx).Exec(ctx, "SELECT set_config('tenant.shared_writes', 'on', true)"); err != nil {
		return fmt.Errorf("tenant: allow shared writes: %w", err)
	}
	return nil
}
