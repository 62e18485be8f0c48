package tenant

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tenantkit/tenant/schema"
)

// Admission decides what happens to a valid tenant name whose schema does not exist.
// The zero value is ExistingOnly.
type Admission struct {
	create bool
	allow  func(ctx context.Context, name string) bool
}

// ExistingOnly admits only tenants whose schema exists; nothing is ever created by a
// request. Unknown names answer 404.
func ExistingOnly() Admission { return Admission{} }

// AutoCreate provisions a missing schema (extensions, schema, migrations) on its first
// request when allow(ctx, name) says yes; a nil allow admits every valid name, which
// lets anyone who can reach the app create schemas: gate it in production.
func AutoCreate(allow func(ctx context.Context, name string) bool) Admission {
	return Admission{create: true, allow: allow}
}

// admissionTimeout bounds the shared catalog check, which outlives the request that
// started it (concurrent requests for the same name wait on it).
const admissionTimeout = 30 * time.Second

// maxAdmissionEntries bounds the cache under a flood of random names.
const maxAdmissionEntries = 100_000

type admitEntry struct {
	ok      bool
	expires time.Time
}

// admitter remembers which schemas exist, briefly which do not, and makes concurrent
// checks of one name share a single catalog query.
type admitter struct {
	p       *schema.Provisioner
	policy  Admission
	hitTTL  time.Duration
	missTTL time.Duration

	group singleflight.Group
	mu    sync.Mutex
	cache map[string]admitEntry
}

func newAdmitter(p *schema.Provisioner, policy Admission, hitTTL, missTTL time.Duration) *admitter {
	if hitTTL <= 0 {
		hitTTL = DefaultHitTTL
	}
	if missTTL <= 0 {
		missTTL = DefaultMissTTL
	}
	return &admitter{p: p, policy: policy, hitTTL: hitTTL, missTTL: missTTL, cache: map[string]admitEntry{}}
}

// admit returns nil for an admitted tenant, ErrUnknownTenant or ErrUnavailable.
// name must be valid.
func (a *admitter) admit(ctx context.Context, name string) error {
	ok, cached := a.lookup(name)
	if !cached {
		v, err, _ := a.group.Do(name, func() (any, error) {
			if ok, cached := a.lookup(name); cached {
				return ok, nil
			}
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), admissionTimeout)
			defer cancel()
			ok, err := a.check(cctx, name)
			if err != nil {
				return false, err
			}
			a.store(name, ok)
			return ok, nil
		})
		if err != nil {
			return err
		}
		ok = v.(bool)
	}
	if !ok {
		return fmt.Errorf("%w: schema %q does not exist", ErrUnknownTenant, name)
	}
	return nil
}

func (a *admitter) check(ctx context.Context, name string) (bool, error) {
	exists, err := a.p.Exists(ctx, name)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if exists || !a.policy.create {
		return exists, nil
	}
	if a.policy.allow != nil && !a.policy.allow(ctx, name) {
		return false, nil
	}
	if err := a.p.Ensure(ctx, name); err != nil {
		return false, fmt.Errorf("%w: provisioning: %w", ErrUnavailable, err)
	}
	return true, nil
}

func (a *admitter) lookup(name string) (ok, cached bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, found := a.cache[name]
	if !found || time.Now().After(e.expires) {
		return false, false
	}
	return e.ok, true
}

func (a *admitter) store(name string, ok bool) {
	ttl := a.missTTL
	if ok {
		ttl = a.hitTTL
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxAdmissionEntries {
		for k, e := range a.cache {
			if now.After(e.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= maxAdmissionEntries {
			return // still full of fresh entries: serve uncached rather than grow
		}
	}
	a.cache[name] = admitEntry{ok: ok, expires: now.Add(ttl)}
}

func (a *admitter) forget(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.cache, name)
}
