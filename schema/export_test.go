package schema

import "context"

// EnsureShared lets the tests make the shared schemas alone, as provisioning does first.
func (p *Provisioner) EnsureShared(ctx context.Context) error { return p.ensureShared(ctx) }

// WaitStock waits for the background refill under way, if any, without stopping it:
// call it after the sign-up that started it has returned.
func (p *Provisioner) WaitStock() { p.stock.wg.Wait() }
