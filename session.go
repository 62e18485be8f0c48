package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/tenantctx"
)

// finishTimeout bounds COMMIT/ROLLBACK, which run even when the request was cancelled.
const finishTimeout = 30 * time.Second

// session is the lazy, request-scoped transaction behind tenantctx.Session. Nothing
// touches the pool until the first call; that call acquires a connection and sends the
// binding's begin and itself in one round trip (pipeline.go). Statements go to that
// connection, prepared by the session per binding (statements.go); the end checks the
// binding, commits or rolls back and resets the connection in one more (txend.go).
//
// It is safe for concurrent use: mu serializes every use of the connection (each call,
// the reading of its results, the end), since a pgx connection is not safe for
// concurrent use, and once the session ended nothing reaches the connection any more:
// it may already serve another request, of another tenant.
type session struct {
	pool     *pgxpool.Pool
	roles    *rolePools      // Config.Roles: connections of the tenant's role, not pool's
	affinity *affinityGroups // Config.AffinityGroups: connections of the tenant's group
	admit    *admitter       // refreshes the binding when a migration or drop moved the marker
	// checkApart has the check answered before COMMIT begins (binding.commitApart), so
	// a COMMIT whose connection dies can be resolved even after a crash. It costs a
	// few percent of a transaction; requests of safe methods (GET, HEAD), which should
	// not write, go without. Set before the session is used.
	checkApart bool
	// maxTenants is Config.MaxTenantsPerConn as resolved: the connection retires after
	// a transaction that makes it this many distinct tenants' (connState.serve); 0 never.
	maxTenants int

	mu        sync.Mutex
	b         *binding
	conn      *pgxpool.Conn // once begun
	savepoint int64         // savepoints begun, for their names
	pending   []string      // savepoint commands to send before the next statement
	ended     bool
	// batchOpen is closed when the batch whose callbacks run (without the lock, so
	// that they may call the session and get errConnBusy rather than wait forever) is
	// closed; nil otherwise.
	batchOpen     chan struct{}
	conflict      bool // a serialization failure, deadlock or stale plan was seen
	lostStatement bool // ... or a cached statement missing on the server
	connLost      bool // the connection died: the transaction with it, nothing committed
	// closedByHandler: a context of the handler's ended a statement, which closed the
	// connection; that is no lost connection.
	closedByHandler bool
	lost            bool  // the handler ended or unbound the transaction
	dirty           bool  // SQL that leaves state the reset cannot remove: close the connection
	beginErr        error // the transaction could not begin; wraps the lifecycle error to answer
	began           bool
	committed       bool
	isolation       string // SetIsolation's level as SQL; "" for the Manager's
	readOnly        bool   // SetReadOnly: READ ONLY, and its response may stream with it open
}

var _ tenantctx.DB = (*session)(nil)

// initSession readies s, in its attempt, for b.
func (m *Manager) initSession(s *session, b *binding) {
	s.pool, s.admit, s.b, s.checkApart, s.maxTenants, s.roles, s.affinity = m.pool, m.admission, b, true, m.maxTenants, m.roles, m.affinity
}

// acquire takes the connection for the transaction: from the pool, with
// Config.Roles from the tenant role's warm connections, with Config.AffinityGroups
// from the tenant's group.
func (s *session) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	switch {
	case s.roles != nil:
		return s.roles.acquire(ctx, s.b)
	case s.affinity != nil:
		return s.affinity.acquire(ctx, s.b)
	}
	return s.pool.Acquire(ctx)
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
	s.watchState(sql)
	return s.conn.Conn(), nil
}

// watchState marks the session dirty when sql may leave on the connection what the
// reset does not remove (leavesSessionState): it is closed after the request.
func (s *session) watchState(sql string) {
	if leavesSessionState(sql) {
		s.dirty = true
	}
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
	// A ride takes the queued savepoint commands with it; when its begin fails, the
	// server skipped them, and the next try (or the next call) must send them again.
	pending := slices.Clone(s.pending)
	defer func() {
		if err != nil {
			s.pending = pending
		}
	}()
	for {
		s.pending = slices.Clone(pending)
		conn, err := s.acquire(ctx)
		if err != nil && s.roles != nil && !refreshed && roleRefused(err) {
			// The tenant's role is gone or may not log in: the tenant was dropped
			// (perhaps made again, with another role) or suspended elsewhere. Admission
			// answers as it would for a moved marker.
			b, rerr := s.admit.refresh(ctx, s.b)
			if rerr != nil {
				return false, s.beginFailed(ctx, rerr)
			}
			s.b, refreshed = b, true
			continue
		}
		if err != nil {
			return false, s.beginFailed(ctx, fmt.Errorf("%w: %w", ErrUnavailable, err))
		}
		rode, err = false, nil
		if ride != nil {
			rode, err = ride(conn.Conn())
		}
		if !rode {
			_, err = conn.Exec(ctx, s.beginSQL())
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
				p, err = s.sendOn(ctx, conn, ownStatement(sql, args), true)
				return true, err
			}
		}
		rode, err := s.begin(ctx, ride)
		if err != nil {
			return nil, nil, err
		}
		if rode {
			s.watchState(sql)
			return s.conn.Conn(), p, nil
		}
	}
	if c, err = s.use(ctx, sql); err != nil {
		return nil, nil, err
	}
	if !own || !stateOf(c).pipelines() {
		return c, nil, s.flushPending(ctx, c)
	}
	if p, err = s.sendOn(ctx, c, ownStatement(sql, args), false); err != nil {
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
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// A context of the handler's (the request's, or one it gave a single query)
		// ended a statement, and pgx closed the connection under it: the handler's
		// answer stands, and so does every later call's "conn closed".
		if s.conn != nil && s.conn.Conn().IsClosed() {
			s.closedByHandler = true
		}
	case s.conn != nil && s.conn.Conn().IsClosed() && !s.closedByHandler:
		// The connection died (a terminated backend, a restart, the network): the
		// transaction died with it, uncommitted, so the request may run again.
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
	for s.batchOpen != nil { // a goroutine still reads a batch on the connection
		open := s.batchOpen
		s.mu.Unlock()
		<-open
		s.mu.Lock()
	}
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
	// Retiring after the end, not before the begin: the request never waits for it,
	// and a retirement cannot fail it. The next acquire that finds no idle connection
	// opens a fresh one.
	retire := stateOf(conn.Conn()).serve(s.b.name, s.maxTenants)
	if end.close || dirty || retire {
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
