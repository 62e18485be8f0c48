package tenant

import (
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// What goes before a pipeline's statements: the begin (when the transaction begins
// there), the closing of evicted statements, and the queued savepoint commands.
//
// In pgx's default mode the begin's constant parts are statements prepared once per
// connection (BEGIN at the level asked, and the set_config of search_path and the
// tenant.schema marker, with the tenant as parameters): nothing to parse or plan on
// each request. The LOCK of the version marker names the tenant's table, so it is
// parsed each time (a utility statement: nothing to plan). Other modes (PgBouncer
// without prepared statements) send every part unnamed.

// bindSQL sets what SET LOCAL search_path and SET LOCAL tenant.schema set: $1 is the
// tenant, $2 the rest of its search path. quote_ident quotes the tenant as SET does
// (only when needed), so SHOW search_path reads the same either way.
const bindSQL = "SELECT set_config('search_path', quote_ident($1) || $2, true), set_config('tenant.schema', $1, true)"

// bindName is bindSQL's prepared statement. The session's own statements share the
// prefix of its statements, so that behind PgBouncer without prepared statement
// support their loss is told apart (isLostStatement).
const bindName = statementPrefix + "bind"

// beginName names the prepared statement of a BEGIN (BEGIN ISOLATION LEVEL
// SERIALIZABLE READ ONLY: tenant_stmt_begin_serializable_read_only).
func beginName(begin string) string {
	level := strings.TrimPrefix(begin, "BEGIN ISOLATION LEVEL ")
	return statementPrefix + "begin_" + strings.ToLower(strings.ReplaceAll(level, " ", "_"))
}

// pipelineHead is what sendHead queued, for readHead.
type pipelineHead struct {
	begin   []string // the begin's results in order: a helper statement's name where its description comes, "" for a statement's result
	closing []string // the evicted statements closed behind the begin
	pending int
}

// sendHead queues the begin (when asked), the closing of evicted statements and the
// queued savepoint commands.
func (s *session) sendHead(pl *pgconn.Pipeline, st *connState, begin bool) pipelineHead {
	var h pipelineHead
	switch {
	case begin && st.named():
		stmt, name := s.beginPrepared()
		// Each is prepared right before its first use: a statement parsed before BEGIN
		// ran would take the snapshot BEGIN's isolation level must come before.
		beginReady, bindReady := st.ready[name], st.ready[bindName]
		if !beginReady {
			pl.SendPrepare(name, stmt, nil)
		}
		pl.SendQueryPrepared(name, nil, nil, nil)
		pl.SendQueryParams(s.b.lock, nil, nil, nil, nil)
		if !bindReady {
			pl.SendPrepare(bindName, bindSQL, nil)
		}
		pl.SendQueryPrepared(bindName, s.b.bindArgs, nil, nil)
		if h.begin = s.b.preparedHead; !beginReady || !bindReady { // as sent
			h.begin = nil
			if !beginReady {
				h.begin = append(h.begin, name)
			}
			h.begin = append(h.begin, "", "")
			if !bindReady {
				h.begin = append(h.begin, bindName)
			}
			h.begin = append(h.begin, "")
		}
	case begin:
		parts := s.beginParts()
		for _, q := range parts {
			pl.SendQueryParams(q, nil, nil, nil, nil)
		}
		h.begin = s.b.plainHead
	}
	for _, name := range st.closing {
		pl.SendDeallocate(name)
	}
	h.closing, st.closing = st.closing, nil
	for _, q := range s.pending {
		pl.SendQueryParams(q, nil, nil, nil, nil)
	}
	h.pending, s.pending = len(s.pending), nil
	return h
}

// readHead reads the results of what sendHead queued. A failed begin is returned (the
// pipeline read to its end); a failed savepoint command is the statements' error,
// in p.err.
func (s *session) readHead(p *pipelined, st *connState, h pipelineHead) error {
	for _, name := range h.begin {
		var err error
		if name != "" {
			if p.description(); p.err == nil {
				st.ready[name] = true
			}
			err, p.err = p.err, nil
		} else {
			err = p.readPlain(1)
		}
		if err != nil { // the server skipped the rest: the statements are still to close
			_ = p.pl.Close()
			st.closing = append(h.closing, st.closing...)
			return err
		}
	}
	for range h.closing {
		if _, p.err = p.pl.GetResults(); p.err != nil {
			return nil
		}
	}
	if h.pending > 0 {
		p.err = p.readPlain(h.pending)
	}
	return nil
}
