package tenant_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
)

// Admission remembers that a name is no tenant for MissTTL, and no longer: a tenant
// provisioned meanwhile (by another process) is served once it expired.
func TestMissTTL(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ttl     time.Duration
		wait    time.Duration
		answers int
	}{
		{"remembered within the TTL", time.Hour, 0, http.StatusNotFound},
		{"asked again after it", 50 * time.Millisecond, 100 * time.Millisecond, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTenantName("ttl")
			e := newEnv(t, 2, tenant.Config{Resolver: byHeader, MissTTL: tc.ttl})
			h := tenant.Middleware(e.mgr)(okHandler)
			assert.Equal(t, http.StatusNotFound, do(h, "GET", "/", nil, "X-Tenant", a).Code)

			require.NoError(t, e.mgr.Provisioner().Ensure(context.Background(), a)) // as another process would
			t.Cleanup(func() { _, _ = e.admin.Exec(context.Background(), `DROP SCHEMA IF EXISTS "`+a+`" CASCADE`) })
			time.Sleep(tc.wait)
			assert.Equal(t, tc.answers, do(h, "GET", "/", nil, "X-Tenant", a).Code)
		})
	}
}
