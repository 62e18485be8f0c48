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
