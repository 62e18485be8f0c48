package tenant

import "github.com/jackc/pgx/v5/pgxpool"

// WaitAfterCommit waits until the after-commit functions started so far have run, so
// a test can check what they did, or that none ran.
func (m *Manager) WaitAfterCommit() { m.hooks.wg.Wait() }

// QuoteLiteral is the library's SQL string literal quoting, for tests that write SQL.
var QuoteLiteral = quoteLiteral

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

// AffinityGroupOf is the group of Config.AffinityGroups that serves the tenant whose
// schema has this OID; -1 without groups.
func (m *Manager) AffinityGroupOf(oid uint32) int {
	if m.affinity == nil {
		return -1
	}
	return m.affinity.group(oid)
}

// RequestPools are the pools whose connections serve transactions: the groups of
// Config.AffinityGroups, else the Manager's pool.
func (m *Manager) RequestPools() []*pgxpool.Pool {
	if m.affinity == nil {
		return []*pgxpool.Pool{m.pool}
	}
	return m.affinity.pools
}
