package tenant

// WaitAfterCommit waits until the after-commit functions started so far have run, so
// a test can check what they did, or that none ran.
func (m *Manager) WaitAfterCommit() { m.hooks.wg.Wait() }

// WarnAfterMisses is how many requests without a tenant a Middleware answers before it
// warns that its resolver may sit in the wrong place.
const WarnAfterMisses = warnAfterMisses

// RoleConnsOpened is how many connections the Manager's tenant roles opened (Config.Roles).
func (m *Manager) RoleConnsOpened() int64 {
	if m.roles == nil {
		return 0
	}
	m.roles.mu.Lock()
	defer m.roles.mu.Unlock()
	var n int64
	for _, p := range m.roles.pools {
		n += p.Stat().NewConnsCount()
	}
	return n
}
