package schema_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/tenantkit/tenant/schema"
)

// BenchmarkAdmit compares the two ways to ask about a known tenant: Lookup, one
// registry query (what tenant.Manager's admission sends on a cache miss), and
// Ensure, the full provisioning check (a transaction with the advisory lock, the
// registry, the version table and the marker). The baseline is Lookup.
func BenchmarkAdmit(b *testing.B) {
	ctx := context.Background()
	pool := setup(b)
	p := newProvisioner(b, pool, schema.Config{})
	const name = "bench_admit"
	if err := p.Ensure(ctx, name); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Drop(ctx, name) }()
	b.Run("Lookup/baseline", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.Lookup(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Ensure", func(b *testing.B) {
		for b.Loop() {
			if err := p.Ensure(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkValidate compares Validate with the one-regexp check other libraries use
// (which misses the length, prefix, reserved and trailing-newline rules).
func BenchmarkValidate(b *testing.B) {
	names := []string{"acme", "municipalities-new_york", "Robert'); DROP TABLE students;--", "pg_catalog"}
	re := regexp.MustCompile(`^[a-z0-9_-]+$`)
	b.Run("Validate", func(b *testing.B) {
		for b.Loop() {
			for _, n := range names {
				_ = schema.Validate(n)
			}
		}
	})
	b.Run("regexp/baseline", func(b *testing.B) {
		for b.Loop() {
			for _, n := range names {
				_ = re.MatchString(n)
			}
		}
	})
}
