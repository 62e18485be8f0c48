package tenantsql_test

import (
	"os"
	"testing"

	"github.com/tenantkit/tenant/tenanttest"
)

func TestMain(m *testing.M) { os.Exit(tenanttest.Main(m)) }
