package tenant_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/pool"
)

// New refuses a Config it would have to guess about, and says what is wrong.
func TestNewRefusesBadConfig(t *testing.T) {
	ctx := context.Background()
	p := testdb.Pool(t)
	for _, tc := range []struct {
		name string
		cfg  tenant.Config
		want string
	}{
		{"neither DSN nor Pool", tenant.Config{}, "needs DSN or Pool"},
		{"both DSN and Pool", tenant.Config{DSN: testdb.URL(t), Pool: p}, "both Pool and DSN"},
		{"Pool with PoolOptions", tenant.Config{Pool: p, PoolOptions: []pool.Option{pool.WithMaxConns(2)}}, "both Pool and DSN or PoolOptions"},
		{"an unknown isolation level", tenant.Config{Pool: p, Isolation: "chaos"}, "isolation"},
		{"a malformed DSN", tenant.Config{DSN: "postgres://%zz"}, "pool"},
		{"a migration file out of pattern", tenant.Config{Pool: p, Migrations: fstest.MapFS{"latest.sql": {Data: []byte("SELECT 1")}}}, "migration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tenant.New(ctx, tc.cfg)
			require.Error(t, err)
			assert.Nil(t, m)
			assert.Contains(t, strings.ToLower(err.Error()), strings.ToLower(tc.want))
		})
	}
}

// A tenant name in a request is case-insensitive, whichever resolver found it: the
// host was already, and a path or a header is too. Only ASCII folds: a look-alike
// (the Kelvin sign for "k") names no tenant.
func TestTenantNamesInRequestsFoldCase(t *testing.T) {
	a := newTenantName("kase")
	e := newEnv(t, 2, tenant.Config{Resolver: middleware.First(byHeader, middleware.PathPrefix("/t/"))}, a)
	h := tenant.Middleware(e.mgr)(okHandler)
	for _, tc := range []struct {
		name, path, header string
		status             int
	}{
		{"header, upper case", "/", strings.ToUpper(a), http.StatusOK},
		{"path, mixed case", "/t/" + strings.ToUpper(a[:1]) + a[1:] + "/x", "", http.StatusOK},
		{"the Kelvin sign", "/", "\u212A" + a[1:], http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec = do(h, "GET", tc.path, nil, "X-Tenant", tc.header)
			assert.Equal(t, tc.status, rec.Code, rec.Body.String())
			if tc.status == http.StatusOK {
				assert.Equal(t, "hello "+a, rec.Body.String())
			}
		})
	}
}
