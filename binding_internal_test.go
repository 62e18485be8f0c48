package tenant

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// What makes the session close its connection after the request: SQL that can leave
// state the reset does not remove, and nothing that merely looks like it.
func TestLeavesSessionState(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT prepared_at FROM jobs":                                  false,
		"INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING":               false,
		"INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 1": false,
		"SELECT 1 AS do":        false,
		"PREPARE p AS SELECT 1": true,
		"listen x":              true,
		"DEALLOCATE ALL":        true,
		"DISCARD PLANS":         true,
		"DO $$ BEGIN EXECUTE 'DEALL' || 'OCATE x'; END $$":              true,
		"do $body$ begin null; end $body$":                              true,
		"DO\n'BEGIN NULL; END'":                                         true,
		"DO E'BEGIN NULL; END'":                                         true,
		"DO LANGUAGE plpgsql $$ BEGIN NULL; END $$":                     true,
		"SELECT 1; DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$; --": true,
		"UPDATE t SET note = 'we do $5 deals' WHERE id = 1":             true, // a literal: closing for nothing is safe
	} {
		assert.Equal(t, want, leavesSessionState(sql), "%q", sql)
	}
}
