package tenant_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/schema"
)

// A suspended tenant answers like an unknown one (or 423, for an ErrorHandler that
// prefers it), even under AutoCreate and for a handler that sends no query, keeps its
// data, and is served again when resumed: at once by the Manager that suspended it,
// within HitTTL by another process's Manager.
func TestManagerSuspend(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		admission tenant.Admission
		onError   tenant.ErrorHandler
		code      int
	}{
		{"ExistingOnly", tenant.ExistingOnly(), nil, http.StatusNotFound},
		{"AutoCreate", tenant.AutoCreate(nil), nil, http.StatusNotFound},
		{"423", tenant.ExistingOnly(), func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, schema.ErrSuspended) {
				http.Error(w, "tenant suspended", http.StatusLocked)
				return
			}
			tenant.WriteError(w, r, err)
		}, http.StatusLocked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTenantName("susp")
			cfg := tenant.Config{Resolver: byHeader, Admission: tc.admission, ErrorHandler: tc.onError, HitTTL: 200 * time.Millisecond}
			e := newEnv(t, 1, cfg, a)
			other := newEnv(t, 1, cfg) // another replica on the same database
			e.seedItems(t, 3, a)
			for _, h := range []http.Handler{through(e, showTenant), through(other, showTenant)} {
				r := do(h, "GET", "/", nil, "X-Tenant", a)
				require.Equal(t, 200, r.Code, r.Body.String())
				require.Equal(t, a+", extensions, pg_temp|"+a+","+a+","+a, r.Body.String())
			}
			noQuery := through(e, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			otherNoQuery := through(other, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

			require.NoError(t, e.mgr.Suspend(ctx, a))
			assert.Equal(t, tc.code, do(noQuery, "GET", "/", nil, "X-Tenant", a).Code, "at once in this process")
			assert.Equal(t, tc.code, do(through(e, showTenant), "GET", "/", nil, "X-Tenant", a).Code)
			assert.Eventually(t, func() bool { return do(otherNoQuery, "GET", "/", nil, "X-Tenant", a).Code == tc.code },
				5*time.Second, 20*time.Millisecond, "within HitTTL in another")
			assert.Equal(t, 3, e.count(t, `SELECT count(*) FROM "`+a+`".items WHERE owner = $1`, a), "its data is kept")

			require.NoError(t, e.mgr.Resume(ctx, a))
			r := do(through(e, showTenant), "GET", "/", nil, "X-Tenant", a)
			assert.Equal(t, 200, r.Code, r.Body.String())
			assert.Equal(t, a+", extensions, pg_temp|"+a+","+a+","+a, r.Body.String())
			assert.Eventually(t, func() bool { return do(otherNoQuery, "GET", "/", nil, "X-Tenant", a).Code == 200 },
				5*time.Second, 20*time.Millisecond)
		})
	}
}

// through wraps h in the env's Manager's middleware.
func through(e *env, h http.Handler) http.Handler { return tenant.Middleware(e.mgr)(h) }
