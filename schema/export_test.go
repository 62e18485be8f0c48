package schema

import "context"

// EnsureShared lets the tests make the shared schemas alone, as provisioning does first.
func (p *Provisioner) EnsureShared(ctx context.Context) error { return p.ensureShared(ctx) }
