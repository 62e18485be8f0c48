package tenant_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
)

const misplacedWarning = "level=WARN msg=\"tenant: the resolver found no tenant"

// A ServeMux wrapped whole with PathValue never finds a tenant (the wildcard is set only
// inside the matched route): every request is a 404 logged at Debug, and the
// WarnAfterMisses-th says once, at Warn, where the resolver must sit.
func TestMisplacedResolverWarnsOnce(t *testing.T) {
	a := newTenantName("mis")
	e := newEnv(t, 2, tenant.Config{Resolver: middleware.PathValue("tenant")}, a)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /t/{tenant}/documents", okHandler.ServeHTTP)
	wrong := tenant.Middleware(e.mgr)(mux)

	for range tenant.WarnAfterMisses - 1 {
		assert.Equal(t, 404, do(wrong, "GET", "/t/"+a+"/documents", nil).Code)
	}
	assert.NotContains(t, e.logs.String(), misplacedWarning, "not before the last of the first requests")
	assert.Contains(t, e.logs.String(), "level=DEBUG", "each 404 is logged at Debug")

	var wg sync.WaitGroup // concurrent, as a server would run them: still one warning
	for range 4 {
		wg.Go(func() {
			for range tenant.WarnAfterMisses {
				assert.Equal(t, 404, do(wrong, "GET", "/t/"+a+"/documents", nil).Code)
			}
		})
	}
	wg.Wait()
	logs := e.logs.String()
	assert.Equal(t, 1, strings.Count(logs, misplacedWarning), "warned once, not once per batch")
	assert.Contains(t, logs, "requests=100")
	assert.Contains(t, logs, "path=/t/"+a+"/documents")

	// The same route with the middleware inside it finds the tenant.
	right := http.NewServeMux()
	right.Handle("GET /t/{tenant}/documents", tenant.Middleware(e.mgr)(okHandler))
	assert.Equal(t, 200, do(right, "GET", "/t/"+a+"/documents", nil).Code)
}

// A resolver that finds a tenant once is working: the requests without one that follow
// (probes, the bare domain) are no reason to warn, however many.
func TestWorkingResolverDoesNotWarn(t *testing.T) {
	a := newTenantName("ok")
	e := newEnv(t, 2, tenant.Config{Resolver: byHeader}, a)
	h := tenant.Middleware(e.mgr)(okHandler)
	for range tenant.WarnAfterMisses - 1 {
		assert.Equal(t, 404, do(h, "GET", "/", nil).Code)
	}
	assert.Equal(t, 200, do(h, "GET", "/", nil, "X-Tenant", a).Code)
	for range 2 * tenant.WarnAfterMisses {
		do(h, "GET", "/", nil)
	}
	assert.NotContains(t, e.logs.String(), misplacedWarning)
}
