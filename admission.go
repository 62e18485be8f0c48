package tenant

import (
	"context"
	"errors"
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

// ExistingOnly admits only existing tenants; nothing is ever created by a request.
// Unknown names, and schemas this library did not provision, answer 404.
func ExistingOnly() Admission { return Admission{} }

// AutoCreate provisions a missing tenant (extensions, schema, migrations) on its first
// request when allow(ctx, name) says yes; a nil allow admits every valid name, which
// lets anyone who can reach the app create schemas: gate it in production. A schema of
// that name that this library did not provision is never taken over: 404.
func AutoCreate(allow func(ctx context.Context, name string) bool) Admission {
	return Admission{create: true, allow: allow}
}

// admissionTimeout bounds the shared registry check, which may outlive the request
// that started it (concurrent requests for the same name share it; each waits for it
// only as long as its own context allows).
const admissionTimeout = 30 * time.Second

// maxAdmissionEntries bounds the cache under a flood of random names.
const maxAdmissionEntries = 100_000

// admitEntry is what admission remembers of a name: its binding, or nil for a name
// that is not a tenant.
type admitEntry struct {
	b       *binding
	expires time.Time
}

// suspended is what admission remembers of a suspended tenant: not served, and
// answered as unknown with schema.ErrSuspended for an ErrorHandler that tells it apart.
var suspended = new(binding)

// admitter remembers which names are tenants (with their binding), briefly which are
// not, and makes concurrent checks of one name share a single registry query. It is
// the only cache of tenants: the provisioner keeps none.
type admitter struct {
	p       *schema.Provisioner
	policy  Admission
	bind    func(schema.Tenant) *binding
	hitTTL  time.Duration
	missTTL time.Duration
	// maxEntries bounds the cache (maxAdmissionEntries; smaller in tests).
	maxEntries int

	group singleflight.Group
	mu    sync.Mutex
	cache map[string]admitEntry
	// forgets counts forget calls: a check that began before one may have read what
	// the forget was about, so its answer is returned but not remembered.
	forgets uint64
}

func newAdmitter(p *schema.Provisioner, policy Admission, bind func(schema.Tenant) *binding, hitTTL, missTTL time.Duration) *admitter {
	if hitTTL <= 0 {
		hitTTL = DefaultHitTTL
	}
	if missTTL <= 0 {
		missTTL = DefaultMissTTL
	}
	return &admitter{p: p, policy: policy, bind: bind, hitTTL: hitTTL, missTTL: missTTL,
		maxEntries: maxAdmissionEntries, cache: map[string]admitEntry{}}
}

// admit returns the binding of an admitted tenant, or an error wrapping
// ErrUnknownTenant or ErrUnavailable. name must be valid.
func (a *admitter) admit(ctx context.Context, name string) (*binding, error) {
	b, _, err := a.admitAt(ctx, name, time.Now())
	return b, err
}

// admitAt is admit at now, the time of the call; it also reports whether the answer
// came from the cache, at once (when it did not, time went by).
func (a *admitter) admitAt(ctx context.Context, name string, now time.Time) (b *binding, cached bool, err error) {
	b, cached = a.lookup(name, now)
	if !cached {
		ch := a.group.DoChan(name, func() (any, error) {
			if b, cached := a.lookup(name, time.Now()); cached {
				return b, nil
			}
			gen := a.generation()
			// Not the caller's context: the check is shared, and one impatient caller
			// must not fail the others. Each caller waits only as long as its own allows.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), admissionTimeout)
			defer cancel()
			b, err := a.check(cctx, name)
			if err != nil {
				return (*binding)(nil), err
			}
			a.store(name, b, gen)
			return b, nil
		})
		select {
		case res := <-ch:
			if res.Err != nil {
				return nil, false, res.Err
			}
			b = res.Val.(*binding)
		case <-ctx.Done():
			return nil, false, fmt.Errorf("%w: waiting for the tenant check: %w", ErrUnavailable, ctx.Err())
		}
	}
	switch b {
	case nil:
		return nil, cached, fmt.Errorf("%w: %q is not a tenant", ErrUnknownTenant, name)
	case suspended:
		return nil, cached, fmt.Errorf("%w: %q: %w", ErrUnknownTenant, name, schema.ErrSuspended)
	}
	return b, cached, nil
}

// refresh forgets stale (whose version marker is gone: a migration or a drop) and
// admits its tenant again: the new binding, or ErrUnknownTenant for a tenant that no
// longer exists (under AutoCreate, one that was dropped is provisioned again).
// A check that read the registry before the change committed (another request's,
// under way or just remembered) answers a tenant as stale as the one that failed; then
// the registry is asked once more, after forgetting the name.
func (a *admitter) refresh(ctx context.Context, stale *binding) (*binding, error) {
	a.mu.Lock()
	if e, ok := a.cache[stale.name]; ok && asStale(e.b, stale) {
		delete(a.cache, stale.name)
	}
	a.mu.Unlock()
	b, err := a.admit(ctx, stale.name)
	if err == nil && asStale(b, stale) {
		a.forget(stale.name)
		b, err = a.admit(ctx, stale.name)
	}
	return b, err
}

// asStale reports whether b binds the same tenant as stale, at the same version of the
// same schema (OID): whoever made it, its marker is the one found gone.
func asStale(b, stale *binding) bool { return b != nil && b.key == stale.key }

// check asks the registry; under AutoCreate it provisions a missing tenant the policy
// allows. A schema of that name that is not a tenant is refused like a missing one.
func (a *admitter) check(ctx context.Context, name string) (*binding, error) {
	t, err := a.p.Lookup(ctx, name)
	switch {
	case err == nil:
		return a.bind(t), nil
	case errors.Is(err, schema.ErrSuspended): // never provisioned again, whatever the policy
		return suspended, nil
	case isLostStatement(err): // a configuration error, not an outage
		return nil, fmt.Errorf("%w: %w", ErrPreparedStatements, err)
	case !errors.Is(err, schema.ErrNotFound):
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case !a.policy.create, a.policy.allow != nil && !a.policy.allow(ctx, name):
		return nil, nil
	}
	if err := a.p.Ensure(ctx, name); err != nil {
		if errors.Is(err, schema.ErrForeign) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: provisioning: %w", ErrUnavailable, err)
	}
	if t, err = a.p.Lookup(ctx, name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return a.bind(t), nil
}

func (a *admitter) lookup(name string, now time.Time) (b *binding, cached bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, found := a.cache[name]
	if !found || now.After(e.expires) {
		return nil, false
	}
	return e.b, true
}

// generation is the count of forgets so far, for store.
func (a *admitter) generation() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.forgets
}

// store remembers what a check that began at generation gen found, unless a forget
// came since.
func (a *admitter) store(name string, b *binding, gen uint64) {
	ttl := a.missTTL
	if b != nil {
		ttl = a.hitTTL
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.forgets != gen {
		return
	}
	if len(a.cache) >= a.maxEntries {
		for k, e := range a.cache {
			if now.After(e.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= a.maxEntries {
			return // still full of fresh entries: serve uncached rather than grow
		}
	}
	a.cache[name] = admitEntry{b: b, expires: now.Add(ttl)}
}

// forget drops what admission remembers of name, and keeps checks already under way
// (which may have read the registry before the change that prompts the forget) from
// remembering their answer. Later requests for name start a check of their own.
func (a *admitter) forget(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.cache, name)
	a.forgets++
	a.group.Forget(name)
}
