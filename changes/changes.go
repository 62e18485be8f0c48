// Package changes delivers change signals: the schema, table and primary key of every
// row inserted, updated or deleted in a tracked table, after its transaction commits
// and never for work rolled back, whoever made the change (a request, raw SQL, another
// process or replica). onegov's on_insert / on_update / on_delete, without their blind
// spots.
//
// A table opts in from a migration, where its triggers are installed:
//
//	SELECT tenant_registry.track_changes('documents');  -- one table
//	SELECT tenant_registry.track_schema_changes();      -- every table with a primary key
//
// and a process subscribes, to one schema or all (tenant.Manager.Subscribe gives a
// Feed on its database):
//
//	sub, err := mgr.Subscribe(ctx, changes.Filter{Schema: "acme"})
//	defer sub.Close()
//	for c := range sub.C { log.Print(c.Op, c.Table, c.Key) }
//
// PostgreSQL carries the signals (NOTIFY, sent at commit), so a Feed needs a
// connection of its own that stays in one session: not through PgBouncer in
// transaction mode.
package changes

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Op is what happened to a row.
type Op byte

// The operations, as the signals carry them.
const (
	Insert   Op = 'I'
	Update   Op = 'U'
	Delete   Op = 'D'
	Truncate Op = 'T' // the whole table; Key is nil
)

// String is the operation in words: insert, update, delete, truncate.
func (o Op) String() string {
	switch o {
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Delete:
		return "delete"
	case Truncate:
		return "truncate"
	}
	return fmt.Sprintf("Op(%q)", byte(o))
}

// Change is one row inserted, updated or deleted (or a table truncated), in a
// transaction that committed.
type Change struct {
	Schema string
	Table  string
	Op     Op
	// Key is the row's primary key, one text per key column in the key's order: the
	// generated id of an inserted row, the new key of an updated one, the key of a
	// deleted one. Nil for Truncate.
	Key []string
	// Missed reports that changes before this one were not delivered to this
	// subscription: it fell behind by more than its buffer, or the Feed's connection
	// was lost and made again. A subscriber that keeps state reloads it.
	Missed bool
}

// String is the change for a log line: "insert acme.documents 42".
func (c Change) String() string {
	return fmt.Sprintf("%s %s.%s %s", c.Op, c.Schema, c.Table, strings.Join(c.Key, ","))
}

// Filter chooses the changes a subscription gets; an empty field matches all.
type Filter struct {
	Schema string
	Table  string
}

func (f Filter) matches(c Change) bool {
	return (f.Schema == "" || f.Schema == c.Schema) && (f.Table == "" || f.Table == c.Table)
}

// signal is a notification's payload: a statement's changes to one table, or a part
// of them (a statement's keys are split over as many signals as their size needs).
type signal struct {
	Schema string     `json:"s"`
	Table  string     `json:"t"`
	Op     string     `json:"o"`
	Keys   [][]string `json:"k"` // a key too long for a signal is null
}

// parse returns the changes a payload carries.
func parse(payload string) ([]Change, error) {
	var s signal
	if err := json.Unmarshal([]byte(payload), &s); err != nil {
		return nil, fmt.Errorf("changes: a signal that is not one: %w", err)
	}
	if len(s.Op) != 1 || !strings.Contains("IUDT", s.Op) || s.Schema == "" || s.Table == "" {
		return nil, fmt.Errorf("changes: a signal that is not one: %.200s", payload)
	}
	op := Op(s.Op[0])
	if op == Truncate {
		return []Change{{Schema: s.Schema, Table: s.Table, Op: op}}, nil
	}
	out := make([]Change, len(s.Keys))
	for i, key := range s.Keys {
		out[i] = Change{Schema: s.Schema, Table: s.Table, Op: op, Key: key}
	}
	return out, nil
}
