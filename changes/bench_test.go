package changes_test

import (
	"context"
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenanttest"
)

// The cost of tracking on writes: the same statements on a tracked and an untracked
// table, in the same run (BENCHMARKS.md reports the ratio). Run with make bench.
func BenchmarkTrackedWrites(b *testing.B) {
	ctx := context.Background()
	mgr := tenanttest.New(b, tenant.Config{Migrations: fstest.MapFS{"001_tables.sql": {Data: []byte(`
		CREATE TABLE tracked (id bigserial PRIMARY KEY, body text);
		CREATE TABLE untracked (id bigserial PRIMARY KEY, body text);
		SELECT tenant_registry.track_changes('tracked');`)}}})
	tenanttest.Tenant(b, mgr, "bench_changes")
	db := mgr.Pool()
	for _, tc := range []struct{ name, sql string }{
		{"one row", "INSERT INTO bench_changes.%s (body) VALUES ('x')"},
		{"10000 rows", "INSERT INTO bench_changes.%s (body) SELECT 'x' FROM generate_series(1, 10000)"},
	} {
		for _, table := range []string{"untracked", "tracked"} {
			sql := fmt.Sprintf(tc.sql, table)
			b.Run(tc.name+"/"+table, func(b *testing.B) {
				for b.Loop() {
					if _, err := db.Exec(ctx, sql); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
