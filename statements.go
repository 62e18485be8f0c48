package tenant

import (
	"container/list"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The session prepares its statements itself rather than through pgx's statement
// cache, for two reasons. A statement's description (its parameter and result types)
// is the same on every connection for one tenant at one schema version, so it is
// learned once per binding and shared: a connection that has not prepared the
// statement yet parses it with the known parameter types in the same round trip as
// its first execution, and the first statement of a transaction rides in the round
// trip that begins it. And it is described only inside the tenant's transaction, after
// its search_path is set: pgx would describe a batch's statements before the batch's
// BEGIN ran.

// statementPrefix names the session's prepared statements: isLostStatement looks for
// it (and pgx's) in a "does not exist" error.
const statementPrefix = "tenant_stmt_"

// maxDescriptions bounds the descriptions a binding keeps. When full it starts over:
// an application has far fewer statements than this.
const maxDescriptions = 1024

// descriptions are a binding's statement descriptions by SQL text.
type descriptions struct {
	mu sync.Mutex
	m  map[string]*pgconn.StatementDescription
}

// get returns sql's description, or nil if it was never described in a transaction of
// the binding.
func (d *descriptions) get(sql string) *pgconn.StatementDescription {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[sql]
}

// put remembers sd, described for sd.SQL inside a transaction of the binding. It is
// shared from then on: nothing may change it.
func (d *descriptions) put(sd *pgconn.StatementDescription) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil || len(d.m) >= maxDescriptions {
		d.m = make(map[string]*pgconn.StatementDescription)
	}
	d.m[sd.SQL] = sd
}

// forget drops sql's description: its statement failed in a way that says the
// description may be stale (a table changed outside the migrations).
func (d *descriptions) forget(sql string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, sql)
}

// connState is what the session keeps per connection, in pgconn's per-connection data:
// how statements are sent, the statements prepared there, and a reusable builder of
// their parameters.
type connState struct {
	mode     pgx.QueryExecMode
	capacity int                      // statements kept prepared, pgx's StatementCacheCapacity
	prepared map[string]*list.Element // by statement name; the list holds names, most recent first
	order    list.List
	closing  []string // evicted: closed in the next round trip
	builder  pgx.ExtendedQueryBuilder
	tracer   pgx.QueryTracer // the connection's, told of the statements the session sends itself
	ready    map[string]bool // the session's own statements (begin, bind, end) prepared there
	// tenants are the distinct tenants whose transactions ran on the connection, kept
	// while retirement is on (serve).
	tenants map[string]struct{}

	// reset is the connection's reset (resetFor): resetSQL, then params, the SET of each
	// start-up parameter PgBouncer keeps.
	reset  string
	params []string

	// The prepared end's messages, reused: the frontend encodes them when sent.
	bind      pgproto3.Bind
	execute   pgproto3.Execute
	checkArgs [1][]byte
	results   resultMemory
}

// connStateKey holds a connection's connState in pgconn's per-connection data.
const connStateKey = "tenant.conn"

func stateOf(conn *pgx.Conn) *connState {
	data := conn.PgConn().CustomData()
	if st, ok := data[connStateKey].(*connState); ok {
		return st
	}
	cfg := conn.Config() // a copy: once per connection
	st := &connState{mode: cfg.DefaultQueryExecMode, capacity: cfg.StatementCacheCapacity, prepared: map[string]*list.Element{}, ready: map[string]bool{}}
	st.tracer = cfg.Tracer
	if st.capacity <= 0 {
		st.capacity = 512
	}
	data[connStateKey] = st
	return st
}

// pipelines reports whether the session sends statements itself in this mode: with a
// description (named, or unnamed with known parameter types), or typed by their Go
// arguments (QueryExecModeExec, what PgBouncer without prepared statements needs).
// The other modes go through pgx, after a begin of their own.
func (st *connState) pipelines() bool {
	switch st.mode {
	case pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeExec:
		return true
	}
	return false
}

// named reports whether statements are prepared by name on the connection.
func (st *connState) named() bool { return st.mode == pgx.QueryExecModeCacheStatement }

// has reports whether the statement is prepared on the connection, and marks it used.
func (st *connState) has(name string) bool {
	e, ok := st.prepared[name]
	if ok {
		st.order.MoveToFront(e)
	}
	return ok
}

// add records a statement prepared on the connection, evicting the least recently
// used beyond capacity.
func (st *connState) add(name string) {
	if st.has(name) {
		return
	}
	st.prepared[name] = st.order.PushFront(name)
	for st.order.Len() > st.capacity {
		old := st.order.Remove(st.order.Back()).(string)
		delete(st.prepared, old)
		st.closing = append(st.closing, old)
	}
}

// drop forgets a statement (the server lost it, or its result type changed) and has
// it closed in the next round trip, should the server still have it.
func (st *connState) drop(name string) {
	if e, ok := st.prepared[name]; ok {
		st.order.Remove(e)
		delete(st.prepared, name)
	}
	if !slices.Contains(st.closing, name) {
		st.closing = append(st.closing, name)
	}
}

// serve records that a transaction of tenant ran on the connection and reports
// whether the connection is to retire: it has served max distinct tenants, so the
// session closes it after this transaction instead of giving it back. A backend keeps
// catalog data for every table it touched until it exits; closing it is the only way
// to free that, and the pool opens a fresh one when it needs one. max <= 0: never.
func (st *connState) serve(tenant string, max int) bool {
	if max <= 0 {
		return false
	}
	if st.tenants == nil {
		st.tenants = make(map[string]struct{}, max)
	}
	st.tenants[tenant] = struct{}{}
	return len(st.tenants) >= max
}
