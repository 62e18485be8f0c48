package tenant

// WaitAfterCommit waits until the after-commit functions started so far have run, so
// a test can check what they did, or that none ran.
func (m *Manager) WaitAfterCommit() { m.hooks.wg.Wait() }

// WarnAfterMisses is how many requests without a tenant a Middleware answers before it
// warns that its resolver may sit in the wrong place.
const WarnAfterMisses = warnAfterMisses
