package tenant

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/internal/scope"
	"github.com/tenantkit/tenant/tenantctx"
)

// finishTimeout bounds COMMIT/ROLLBACK, which run even when the request was cancelled.
const finishTimeout = 30 * time.Second

// session is the lazy, request-scoped transaction behind tenantctx.Session. Nothing
// touches the pool until the first call; that call acquires a connection and sends the
// binding's begin in one round trip. Statements go to that connection with the
// binding's key; the end commits or rolls back and resets the connection in one more.
//
// It is safe for concurrent use: mu serializes every use of the connection (each call,
// the reading of its results, the end), since a pgx connection is not safe for
// concurrent use, and once the session ended nothing reaches the connection any more:
// it may already serve another request, of another tenant.
type session struct {
	pool  *pgxpool.Pool
	admit *admitter // refreshes the binding when a migration or drop moved the marker
	// checkApart has the check answered before COMMIT begins (binding.commitApart), so
	// a COMMIT whose connection dies can be resolved even after a crash. It costs a
	// few percent of a transaction; requests of safe methods (GET, HEAD), which should
	// not write, go without. Set before the session is used.
	checkApart bool

	mu            sync.Mutex
	b             *binding
	conn          *pgxpool.Conn // once begun
	savepoint     int64         // savepoints begun, for their names
	pending       []string      // savepoint commands to send before the next statement
	ended         bool
	conflict      bool  // a serialization failure, deadlock or stale plan was seen
	lostStatement bool  // ... or a cached statement missing on the server
	connLost      bool  // the connection died: the transaction with it, nothing committed
	lost          bool  // the handler ended or unbound the transaction
	dirty         bool  // SQL that leaves state the reset cannot remove: close the connection
	beginErr      error // the transaction could not begin; wraps the lifecycle error to answer
	began         bool
	committed     bool
	isolation     string // SetIsolation's level as SQL; "" for the Manager's
	readOnly      bool   // SetReadOnly: READ ONLY, and its response may stream with it open
}

var _ tenantctx.DB = (*session)(nil)

// initSession readies s, in its attempt, for b.
func (m *Manager) initSession(s *session, b *binding) {
	s.pool, s.admit, s.b, s.checkApart = m.pool, m.admission, b, true
}

// use returns the connection for the next statement, beginning the transaction on
// first use. It refuses to run anything once the transaction is not the one begun:
// after a handler's ROLLBACK or COMMIT the connection is idle, and a statement there
// would commit on its own. Called with s.mu held, as every method below.
func (s *session) use(ctx context.Context, sql string) (*pgx.Conn, error) {
	if s.ended {
		return nil, tenantctx.ErrSessionEnded
	}
	if s.conn == nil {
		if _, err := s.begin(ctx, nil); err != nil {
			return nil, err
		}
	}
	if s.lost || s.conn.Conn().PgConn().TxStatus() == 'I' {
		s.lost = true
		return nil, ErrTransactionLost
	}
	if leavesSessionState(sql) {
		s.dirty = true
	}
	return s.conn.Conn(), nil
}

// useViaPgx is use for a statement the session hands to pgx: the queued savepoint
// commands go first, in a round trip of their own.
func (s *session) useViaPgx(ctx context.Context, sql string) (*pgx.Conn, error) {
	c, err := s.use(ctx, sql)
	if err != nil {
		return nil, err
	}
	if err := s.flushPending(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// rideAlong sends, on a connection just acquired, the begin and what goes with it in
// the same round trip, and returns the begin's error; rode is false (and nothing was
// sent) when the connection's mode does not let the session send it itself.
type rideAlong func(conn *pgx.Conn) (rode bool, beginErr error)

// begin acquires a connection and binds a transaction to the tenant. With ride, the
// first statement (or batch) goes in the same round trip, when it can (rode).
// When the version marker moved (a migration ran, or the tenant was dropped) it asks
// admission again once: a new version begins with the new binding, a tenant gone fails
// with ErrUnknownTenant. A pooled connection found dead (its backend was terminated)
// is replaced, twice at most.
func (s *session) begin(ctx context.Context, ride rideAlong) (rode bool, err error) {
	refreshed, deadConns := false, 0
	for {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return false, s.beginFailed(ctx, fmt.Errorf("%w: %w", ErrUnavailable, err))
		}
		rode, err = false, nil
		if ride != nil {
			rode, err = ride(conn.Conn())
		}
		if !rode {
			begin := s.b.begin
			if s.isolation != "" || s.readOnly {
				begin = s.b.beginWith(s.isolation, s.readOnly)
			}
			_, err = conn.Exec(ctx, begin)
		}
		if err == nil {
			s.conn, s.began = conn, true
			return rode, nil
		}
		if conn.Conn().IsClosed() && deadConns < 2 && ctx.Err() == nil {
			conn.Release() // pgxpool drops it
			deadConns++
			continue
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			conn.Release() // pgxpool drops a connection left inside a transaction
			return false, s.beginFailed(ctx, fmt.Errorf("%w: %w", ErrUnavailable, err))
		}
		if isLostStatement(err) { // behind PgBouncer without prepared statements: see ErrPreparedStatements
			s.note(err)
			_ = conn.Conn().Close(ctx)
			conn.Release()
			return false, s.beginFailed(ctx, fmt.Errorf("%w: tenant %q: begin: %w", ErrUnavailable, s.b.name, err))
		}
		_, rbErr := conn.Exec(ctx, "ROLLBACK")
		if rbErr != nil {
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
		if refreshed || !isUndefined(pgErr) { // a timeout waiting for a migration, a shutdown, a marker still missing
			return false, s.beginFailed(ctx, fmt.Errorf("%w: tenant %q: begin: %w", ErrUnavailable, s.b.name, err))
		}
		b, err := s.admit.refresh(ctx, s.b)
		if err != nil {
			return false, s.beginFailed(ctx, err)
		}
		s.b, refreshed = b, true
	}
}

// send sends a statement: the session itself when it can (sendsItself, and the
// connection's mode), beginning the transaction in the same round trip if it has not
// begun; otherwise p is nil and the caller sends it through pgx on c.
func (s *session) send(ctx context.Context, sql string, args []any) (c *pgx.Conn, p *pipelined, err error) {
	own := sendsItself(sql, args)
	if s.conn == nil && !s.ended {
		var ride rideAlong
		if own {
			ride = func(conn *pgx.Conn) (bool, error) {
				if !stateOf(conn).pipelines() {
					return false, nil
				}
				var err error
				p, err = s.sendOn(ctx, conn, statement{sql: sql, args: args}, true)
				return true, err
			}
		}
		rode, err := s.begin(ctx, ride)
		if err != nil {
			return nil, nil, err
		}
		if rode {
			if leavesSessionState(sql) {
				s.dirty = true
			}
			return s.conn.Conn(), p, nil
		}
	}
	if c, err = s.use(ctx, sql); err != nil {
		return nil, nil, err
	}
	if !own || !stateOf(c).pipelines() {
		return c, nil, s.flushPending(ctx, c)
	}
	if p, err = s.sendOn(ctx, c, statement{sql: sql, args: args}, false); err != nil {
		s.note(err)
		return nil, nil, err
	}
	return c, p, nil
}

// beginFailed records why the transaction could not begin (unless the request was
// cancelled: then nothing is answered) and returns it.
func (s *session) beginFailed(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		s.beginErr = err
	}
	return err
}

// note remembers errors that call for running the request again: conflicts, a cached
// statement the server does not have (a DEALLOCATE by server-side code, or PgBouncer
// without prepared statements: if it happens on the last attempt too, it is
// ErrPreparedStatements), and a connection that died mid-transaction.
func (s *session) note(err error) {
	switch {
	case err == nil:
	case isLostStatement(err):
		s.conflict, s.lostStatement = true, true
	case isRetryable(err):
		s.conflict = true
	case s.conn != nil && s.conn.Conn().IsClosed() && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		// The connection died (a terminated backend, a restart, the network): the
		// transaction died with it, uncommitted, so the request may run again. Not
		// when the handler's own deadline closed it: the handler's answer stands.
		s.conflict, s.connLost = true, true
	}
}

// state returns what the end of an attempt needs to know.
func (s *session) state() (conflict, lostStatement bool, beginErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflict, s.lostStatement, s.beginErr
}

// lostConnection reports whether the connection died under the transaction.
func (s *session) lostConnection() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connLost
}

func (s *session) sawConflict() bool {
	conflict, _, _ := s.state()
	return conflict
}

// finish ends the transaction (commit or roll back), resets what the request may have
// left on the connection, and gives the connection back; later calls fail with
// ErrSessionEnded. It waits for a call in progress on another goroutine, and runs even
// when ctx is cancelled. The error wraps ErrTransactionLost when the transaction was
// not the one begun; otherwise it is the COMMIT's (pgx.ErrTxCommitRollback for a
// failed transaction), errRerun when the connection died before COMMIT ran (learned on
// another connection if need be), ErrCommitUnknown when nothing tells whether it did,
// or errRollbackFailed.
func (s *session) finish(ctx context.Context, commit bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, lost, dirty := s.conn, s.lost, s.dirty
	s.conn, s.ended = nil, true
	if conn == nil {
		if lost {
			return ErrTransactionLost
		}
		return nil
	}
	released := false
	defer func() { // whatever happens below: pgxpool drops a connection that is not idle
		if !released {
			conn.Release()
		}
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()

	if commit && !s.onlyReleases() { // a ROLLBACK TO, and no statement after it
		_ = s.flushPending(ctx, conn.Conn())
	}
	s.pending = nil
	before := beforeEndSQL
	if dirty { // PREPARE, LISTEN, DEALLOCATE or DISCARD: deallocate, then close (pgx buffers notifications, caches statements)
		before += deallocateSQL
	}
	end := endTransaction(ctx, conn.Conn().PgConn(), stateOf(conn.Conn()), s.b, before, resetFor(conn.Conn()), commit, s.checkApart)
	if s.readOnly && errors.Is(end.err, ErrCommitUnknown) { // it could not write: nothing to lose
		end.err, end.rerun = nil, true
	}
	if end.close || dirty {
		_ = conn.Conn().Close(ctx)
	}
	conn.Release() // before resolve, which needs a connection of the pool
	released = true
	if end.doubt.xid != "" {
		known := false
		if end.committed, known = resolveCommit(ctx, s.pool, end.doubt); !known {
			end.err = fmt.Errorf("%w: transaction %s", ErrCommitUnknown, end.doubt.xid)
		}
		end.rerun = known && !end.committed
	}
	s.committed = end.committed
	switch {
	case lost || end.lost:
		return fmt.Errorf("%w (tenant %q)", ErrTransactionLost, s.b.name)
	case end.rerun:
		return errRerun
	case end.err != nil && !commit:
		return fmt.Errorf("%w: %w", errRollbackFailed, end.err)
	}
	return end.err
}

// setMode sets SetIsolation's and SetReadOnly's options, before the transaction
// begins.
func (s *session) setMode(isolation string, readOnly bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.began || s.ended {
		return ErrTransactionBegun
	}
	if isolation != "" {
		s.isolation = isolation
	}
	s.readOnly = s.readOnly || readOnly
	return nil
}

// streamsOpen reports whether the response may stream with the transaction open: a
// read-only transaction has nothing to lose.
func (s *session) streamsOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readOnly
}

// outcome reports whether a transaction began, and whether it committed.
func (s *session) outcome() (began, committed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.began, s.committed
}

// Exec runs sql. Without arguments it goes as pgx sends it, in the simple protocol (so
// it may hold several statements); with arguments as a prepared statement, in the
// round trip that begins the transaction if it is the first.
func (s *session) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(args) == 0 {
		if s.conn == nil && !s.ended {
			var tag pgconn.CommandTag
			var stmtErr error
			rode, err := s.begin(ctx, func(conn *pgx.Conn) (bool, error) {
				var err error
				tag, stmtErr, err = s.execWithBegin(ctx, conn, sql)
				return true, err
			})
			if err != nil {
				return pgconn.CommandTag{}, err
			}
			if rode {
				if leavesSessionState(sql) {
					s.dirty = true
				}
				s.note(stmtErr)
				return tag, stmtErr
			}
		}
		c, err := s.useViaPgx(ctx, sql)
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		tag, err := c.Exec(ctx, s.b.keyed(sql))
		s.note(err)
		return tag, err
	}
	c, p, err := s.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	var tag pgconn.CommandTag
	if p != nil {
		tag, err = p.exec()
	} else {
		tag, err = c.Exec(ctx, s.b.keyed(sql), args...)
	}
	s.note(err)
	return tag, err
}

func (s *session) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, p, err := s.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	var rows pgx.Rows
	if p == nil {
		rows, err = c.Query(ctx, s.b.keyed(sql), args...)
	} else if p.err != nil {
		err = p.close()
	} else {
		rows = p.rows(c)
	}
	if err != nil {
		s.note(err)
		return nil, err
	}
	return &observedRows{Rows: rows, s: s}, nil
}

func (s *session) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, p, err := s.send(ctx, sql, args)
	switch {
	case err != nil:
		return scope.FailedRow{Err: err}
	case p == nil:
		return observedRow{row: c.QueryRow(ctx, s.b.keyed(sql), args...), s: s}
	case p.err != nil:
		err = p.close()
		s.note(err)
		return scope.FailedRow{Err: err}
	}
	return observedRow{row: rowOf{rows: p.rows(c)}, s: s}
}

func (s *session) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	var all strings.Builder
	for _, q := range b.QueuedQueries {
		all.WriteString(q.SQL)
		all.WriteByte(';')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	own := batchSendsItself(b)
	if own && s.conn == nil && !s.ended {
		var br *ownBatch
		rode, err := s.begin(ctx, func(conn *pgx.Conn) (bool, error) {
			if !stateOf(conn).pipelines() {
				return false, nil
			}
			var err error
			br, err = s.batchOn(ctx, conn, b, true)
			return true, err
		})
		if err != nil {
			return scope.FailedBatch{Err: err}
		}
		if rode {
			if leavesSessionState(all.String()) {
				s.dirty = true
			}
			return &observedBatch{BatchResults: br, s: s}
		}
	}
	c, err := s.use(ctx, all.String())
	if err != nil {
		return scope.FailedBatch{Err: err}
	}
	if own && stateOf(c).pipelines() {
		br, err := s.batchOn(ctx, c, b, false)
		if err != nil {
			s.note(err)
			return scope.FailedBatch{Err: err}
		}
		return &observedBatch{BatchResults: br, s: s}
	}
	if err := s.flushPending(ctx, c); err != nil {
		return scope.FailedBatch{Err: err}
	}
	return &observedBatch{BatchResults: c.SendBatch(ctx, s.b.keyedBatch(b)), s: s}
}

// CopyFrom copies src into table. src must not use the session: the connection is
// busy with the copy until it ends.
func (s *session) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil && !s.ended && len(s.pending) == 0 { // the table's types are learned in the begin's round trip
		sql, cols := copyDescribeSQL(table, columns)
		var sd *pgconn.StatementDescription
		var describeErr error
		rode, err := s.begin(ctx, func(conn *pgx.Conn) (bool, error) {
			var err error
			sd, describeErr, err = s.describeWithBegin(ctx, conn, sql)
			return true, err
		})
		if err != nil {
			return 0, err
		}
		if rode {
			if describeErr != nil {
				err = fmt.Errorf("tenant: copy: describe %s: %w", table.Sanitize(), describeErr)
				s.note(err)
				return 0, err
			}
			n, err := copyDescribed(ctx, s.conn.Conn(), table, cols, sd, src)
			s.note(err)
			return n, err
		}
	}
	c, err := s.useViaPgx(ctx, "")
	if err != nil {
		return 0, err
	}
	n, err := copyFrom(ctx, c, table, columns, src)
	s.note(err)
	return n, err
}

// Begin starts a savepoint inside the request's transaction. Errors inside it count
// like any other: a conflict there runs the request again even if the savepoint is
// rolled back, since the transaction's view may no longer be consistent. SAVEPOINT,
// RELEASE and ROLLBACK TO go with the next statement, in its round trip (a RELEASE
// left at the end goes with COMMIT, which releases it): an error of theirs is that
// statement's.
func (s *session) Begin(ctx context.Context) (pgx.Tx, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, tenantctx.ErrSessionEnded
	}
	if s.conn != nil {
		if _, err := s.use(ctx, ""); err != nil {
			return nil, err
		}
	}
	s.savepoint++
	sp := &savepoint{s: s, name: "tenant_sp_" + strconv.FormatInt(s.savepoint, 10)}
	s.pending = append(s.pending, "SAVEPOINT "+sp.name)
	return sp, nil
}

// endSavepoint queues RELEASE or ROLLBACK TO (verb) of a savepoint. A savepoint
// whose SAVEPOINT is still queued had no statement: both go.
func (s *session) endSavepoint(ctx context.Context, verb, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return tenantctx.ErrSessionEnded
	}
	if n := len(s.pending); n > 0 && s.pending[n-1] == "SAVEPOINT "+name {
		s.pending = s.pending[:n-1]
		return nil
	}
	s.pending = append(s.pending, verb+name)
	return nil
}

// flushPending sends the queued savepoint commands on their own, for statements the
// session does not send itself (pgx's), and before a COMMIT that must see a ROLLBACK
// TO. The first error is returned, and noted.
func (s *session) flushPending(ctx context.Context, c *pgx.Conn) error {
	if len(s.pending) == 0 {
		return nil
	}
	script := strings.Join(s.pending, "; ")
	s.pending = s.pending[:0]
	_, err := c.Exec(ctx, script)
	s.note(err)
	return err
}

// onlyReleases reports whether every queued savepoint command is a RELEASE: COMMIT
// and ROLLBACK make them moot.
func (s *session) onlyReleases() bool {
	for _, q := range s.pending {
		if !strings.HasPrefix(q, releaseSavepoint) {
			return false
		}
	}
	return true
}

// IsConflict reports whether err means the work lost a race with other transactions
// and may succeed if run again: ErrConflict (retries ran out), or the PostgreSQL
// errors the lifecycle retries (serialization failure 40001, deadlock 40P01, "cached
// plan must not change result type").
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) || isRetryable(err) }

// isRetryable: serialization failure, deadlock, or "cached plan must not change result
// type" (a migration changed a table under a prepared statement). Running the work
// again in a fresh transaction succeeds for all three.
func isRetryable(err error) bool {
	switch sqlState(err) {
	case "40001", "40P01":
		return true
	case "0A000":
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Message == "cached plan must not change result type"
	}
	return false
}

// isLostStatement reports pgx's cached statement missing on the server (26000), or
// prepared twice (42P05): what PgBouncer without prepared statement support causes.
func isLostStatement(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "26000" || pgErr.Code == "42P05") &&
		(strings.Contains(pgErr.Message, "stmtcache_") || strings.Contains(pgErr.Message, statementPrefix))
}

// isUndefined reports a missing relation or schema: the version marker after a
// migration renamed it, or the tenant's schema after a drop.
func isUndefined(pgErr *pgconn.PgError) bool { return pgErr.Code == "42P01" || pgErr.Code == "3F000" }

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
