package tenant

import "context"

// Drop removes the tenant's schema and everything in it (schema.Provisioner.Drop),
// then forgets the tenant in admission, so the Manager's next request for it answers
// as for an unknown tenant (or, under AutoCreate, provisions it again) even when its
// handler sends no query. Errors are Provisioner.Drop's: schema.ErrNotFound,
// schema.ErrForeign, schema.ErrInvalidName. Other processes sharing the database see
// the tenant gone at their next query for it, or within Config.HitTTL.
func (m *Manager) Drop(ctx context.Context, name string) error {
	err := m.provisioner.Drop(ctx, name)
	// Forgotten whatever the outcome: a stale entry is wrong in every case, and an
	// invalid name was never remembered.
	m.admission.forget(name)
	return err
}

// Suspend marks the tenant suspended (schema.Provisioner.Suspend) and forgets it in
// admission: its requests then fail with ErrUnknownTenant wrapping
// schema.ErrSuspended, 404 from WriteError (an ErrorHandler may answer 423 Locked
// instead), and its schema is kept. Requests in flight finish. Other processes sharing
// the database see the suspension within Config.HitTTL.
func (m *Manager) Suspend(ctx context.Context, name string) error {
	err := m.provisioner.Suspend(ctx, name)
	m.admission.forget(name)
	return err
}

// Resume serves a suspended tenant again (schema.Provisioner.Resume), at once in this
// process and within Config.HitTTL in others.
func (m *Manager) Resume(ctx context.Context, name string) error {
	err := m.provisioner.Resume(ctx, name)
	m.admission.forget(name)
	return err
}
