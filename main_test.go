package tenant_test

import (
	"os"
	"testing"

	"github.com/tenantkit/tenant/tenanttest"
)

// The public helper, as an application's tests use it; the tests of this package reach
// the same database through internal/testdb too.
func TestMain(m *testing.M) { os.Exit(tenanttest.Main(m)) }
