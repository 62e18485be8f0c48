package tenant

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/schema"
)

// binding ties a transaction to one tenant at one schema version: the SQL that begins,
// checks and ends it, and the prefix that keys its statements. Admission makes one per
// tenant and version; the tenant's requests share it.
type binding struct {
	name      string
	oid       uint32 // the schema's
	version   int64
	isolation string // the Manager's, as SQL

	// bind follows BEGIN: the version marker locked (before the snapshot is taken, so
	// a migration that commits while we wait is seen whole; and if it renamed the
	// marker, the lock fails and the binding is refreshed), then search_path and the
	// tenant.schema marker, both LOCAL.
	bind string

	// begin is the transaction's first round trip at the Manager's isolation level:
	// BEGIN and bind. beginParts is the same, a statement each, for the session's
	// pipeline (one Parse message holds one statement).
	begin      string
	beginParts []string
	bindParts  []string
	// In pgx's default mode the begin goes as prepared statements (head.go): BEGIN
	// (beginStmt, prepared as beginName), lock, and bindSQL with bindArgs.
	beginStmt, beginName, lock string
	bindArgs                   [][]byte
	// plainHead and preparedHead are the begin's results as readHead expects them,
	// sent unnamed, and (the prepared begin in the steady state) prepared.
	plainHead, preparedHead []string
	// check fails with SQLSTATE 22012 (a division by zero) unless the transaction is
	// still the one begin bound: the handler did not ROLLBACK, COMMIT, COMMIT AND
	// CHAIN, RESET ALL or change search_path. It also answers the transaction's id if
	// it wrote (NULL if it did not), to learn whether it committed should the
	// connection die before COMMIT's reply.
	check string
	// checkArg is the prepared check's parameter: the tenant; checkName the check's
	// prepared statement (txend_prepared.go).
	checkArg  []byte
	checkName string
	// commit and rollback run the check, the part of the reset that may run before
	// the end (beforeEndSQL), end the transaction, and reset the connection (resetSQL),
	// in one round trip: COMMIT never runs for a transaction not ours. commitApart is
	// commit in two scripts, sent together (execEach): the server answers the check,
	// with the transaction's id, before COMMIT begins.
	commit, rollback string
	commitApart      []string
	// key prefixes every statement of the tenant's requests, so pgx caches (and
	// PostgreSQL plans) a statement per tenant schema and version: parameter types
	// inferred for one tenant's tables, for an older migration, or for a schema of the
	// same name since dropped, are never used for another.
	key string
	// stmts are the descriptions of the statements run in the binding's transactions.
	stmts descriptions
}

func newBinding(t schema.Tenant, isolation string) *binding {
	lit := quoteLiteral(t.Name) // the name is valid; quoted all the same
	check := strings.ReplaceAll(checkSQL, "$1", lit) + "; "
	bindParts := []string{
		"LOCK TABLE " + schema.VersionMarker(t).Sanitize() + " IN ACCESS SHARE MODE",
		"SET LOCAL search_path TO " + schema.SearchPath(t.Name),
		"SET LOCAL tenant.schema TO " + lit,
	}
	bind := "; " + strings.Join(bindParts, "; ")
	beginStmt := "BEGIN ISOLATION LEVEL " + isolation
	key := "/*tenant " + t.Name + " v" + strconv.FormatInt(t.Version, 10) + " " + strconv.FormatUint(uint64(t.OID), 10) + "*/ "
	return &binding{
		beginStmt:    beginStmt,
		beginName:    beginName(beginStmt),
		lock:         bindParts[0],
		plainHead:    make([]string, 1+len(bindParts)),
		preparedHead: []string{"", "", ""},
		bindArgs: [][]byte{[]byte(t.Name), // and the search path after the tenant's schema
			[]byte(strings.TrimPrefix(schema.SearchPath(t.Name), pgx.Identifier{t.Name}.Sanitize()))},
		bindParts:   bindParts,
		beginParts:  append([]string{"BEGIN ISOLATION LEVEL " + isolation}, bindParts...),
		check:       check,
		checkArg:    []byte(t.Name),
		name:        t.Name,
		oid:         t.OID,
		version:     t.Version,
		isolation:   isolation,
		bind:        bind,
		begin:       "BEGIN ISOLATION LEVEL " + isolation + bind,
		commit:      check + beforeEndSQL + "COMMIT; " + resetSQL,
		commitApart: []string{check, beforeEndSQL + "COMMIT; " + resetSQL},
		rollback:    check + beforeEndSQL + "ROLLBACK; " + resetSQL,
		key:         key,
		checkName:   checkName(key),
	}
}

// checkSQL is the binding's check, $1 the tenant (see binding.check).
const checkSQL = "SELECT 1/coalesce((current_schema() = $1 AND current_setting('tenant.schema', true) = $1)::int, 0) " +
	"AS tenant_transaction_intact, pg_current_xact_id_if_assigned()::text AS tenant_xid, " +
	"CASE WHEN pg_current_xact_id_if_assigned() IS NOT NULL THEN extract(epoch FROM now())::text END AS tenant_xact_began"

// sqlIntactCheckFailed is the SQLSTATE of the binding's check (division by zero).
const sqlIntactCheckFailed = "22012"

// beginWith is begin at another isolation level, read-only or not. A read-only
// SERIALIZABLE transaction is DEFERRABLE: it waits for a snapshot that cannot fail to
// serialize, so a long read (an export) never runs again.
func (b *binding) beginWith(isolation string, readOnly bool) string {
	return beginStatement(b.isolation, isolation, readOnly) + b.bind
}

// beginPartsWith is beginWith, a statement each.
func (b *binding) beginPartsWith(isolation string, readOnly bool) []string {
	return append([]string{beginStatement(b.isolation, isolation, readOnly)}, b.bindParts...)
}

// beginStatement is the BEGIN at isolation (else the Manager's), read-only or not.
func beginStatement(managers, isolation string, readOnly bool) string {
	if isolation == "" {
		isolation = managers
	}
	mode := ""
	if readOnly {
		mode = " READ ONLY"
		if isolation == "SERIALIZABLE" {
			mode += " DEFERRABLE"
		}
	}
	return "BEGIN ISOLATION LEVEL " + isolation + mode
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// keyed returns sql with the binding's statement key.
func (b *binding) keyed(sql string) string { return b.key + sql }

// keyedBatch returns a copy of batch whose statements carry the binding's key; the
// caller's batch is left as it was (it may be queued again for another tenant).
func (b *binding) keyedBatch(batch *pgx.Batch) *pgx.Batch {
	out := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, len(batch.QueuedQueries))}
	for i, q := range batch.QueuedQueries {
		c := *q
		c.SQL = b.keyed(q.SQL)
		out.QueuedQueries[i] = &c
	}
	return out
}

// leavesSessionState reports SQL that may leave on the connection what the reset does
// not remove by itself, so the connection is closed after the request: PREPARE (a
// statement another request could EXECUTE; listing them to deallocate costs more than
// a request, so only such requests do it), LISTEN (notifications pgx has already
// buffered on the connection), DEALLOCATE and DISCARD (pgx's statement cache would
// name statements the server no longer has), and an anonymous code block (DO), whose
// dynamic SQL can do all of these unseen (even replace a statement the session
// prepared for its own end). It looks for the keyword as a whole word, so a column
// named prepared_at does not count, nor ON CONFLICT DO NOTHING. SQL run inside a
// server-side function is not seen.
func leavesSessionState(sql string) bool {
	for _, word := range [...]string{"prepare", "listen", "deallocate", "discard"} {
		if containsWord(sql, word) {
			return true
		}
	}
	return containsDoBlock(sql)
}

// containsDoBlock reports whether sql has DO followed by its code (a string: $$, $tag$,
// '…', E'…') or LANGUAGE, as an anonymous code block has and ON CONFLICT DO does not.
func containsDoBlock(sql string) bool {
	for i := 0; i+2 <= len(sql); i++ {
		if !strings.EqualFold(sql[i:i+2], "do") || (i > 0 && isWordByte(sql[i-1])) || (i+2 < len(sql) && isWordByte(sql[i+2])) {
			continue
		}
		rest := strings.TrimLeft(sql[i+2:], " \t\r\n")
		switch {
		case rest == "":
		case rest[0] == '$' || rest[0] == '\'':
			return true
		case len(rest) > 1 && (rest[0] == 'E' || rest[0] == 'e') && rest[1] == '\'':
			return true
		case len(rest) >= 8 && strings.EqualFold(rest[:8], "language"):
			return true
		}
	}
	return false
}

// containsWord reports whether s contains word (lower case ASCII) as a whole word,
// ignoring case, without allocating.
func containsWord(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		if (i > 0 && isWordByte(s[i-1])) || (i+len(word) < len(s) && isWordByte(s[i+len(word)])) {
			continue
		}
		if strings.EqualFold(s[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}
