package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
)

// errRerun means the connection died before COMMIT ran (or the transaction wrote
// nothing): nothing committed, so the request may run again.
var errRerun = errors.New("tenant: the connection died before the transaction committed")

// inDoubt is a transaction whose COMMIT's answer was lost with its connection: its id,
// and when it began by the server's clock (seconds since the epoch), from the check.
type inDoubt struct{ xid, began string }

// resolveCommit asks, on another connection, whether the transaction committed. It
// asks until the database answers (a restart takes a moment) or ctx ends; known is
// false then, or when the answer cannot be trusted.
//
// An id is only the transaction's own if the server kept it: a crash loses the ids
// handed out since WAL was last flushed, and the server hands them out again, so
// "committed" may be another transaction's. It is trusted when no crash or restart
// can have come between the transaction's start and now: a server process started
// before the transaction is still running (pg_stat_activity shows the start of what
// the role may see), or the last checkpoint started before it (a restart and a crash
// recovery each end with one). "Aborted", or an id not handed out yet, means not
// committed either way: the id's own transaction did not commit if it was reused.
func resolveCommit(ctx context.Context, pool *pgxpool.Pool, tx inDoubt) (committed, known bool) {
	for {
		var status *string
		var kept bool
		err := pool.QueryRow(ctx, resolveSQL, tx.xid, tx.began).Scan(&status, &kept)
		switch {
		case sqlState(err) == sqlXIDInFuture: // lost in a crash, and not handed out again yet
			return false, true
		case err == nil && status == nil: // too old to be known
			return false, false
		case err == nil && *status == "committed":
			return kept, kept
		case err == nil && *status != "in progress":
			return false, true
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, false
		}
	}
}

// resolveSQL answers a transaction's status, and whether its id is surely its own
// (see resolveCommit).
const resolveSQL = `SELECT pg_xact_status($1::xid8),
	EXISTS (SELECT FROM pg_stat_activity WHERE backend_start < to_timestamp($2::float8))
	OR (SELECT checkpoint_time <= to_timestamp($2::float8) - interval '1 second' FROM pg_control_checkpoint())`

// sqlXIDInFuture is pg_xact_status's SQLSTATE for an id not handed out yet.
const sqlXIDInFuture = "22023"

// ending is what endTransaction did.
type ending struct {
	committed bool    // COMMIT succeeded
	lost      bool    // the transaction was not the one begun: rolled back
	close     bool    // the reset may not have run: the connection must not be reused
	rerun     bool    // the connection died before COMMIT ran, or with nothing written: run again
	doubt     inDoubt // the connection died after the check: COMMIT's outcome is this transaction's
	err       error   // COMMIT's or ROLLBACK's failure, pgx.ErrTxCommitRollback, or ErrCommitUnknown
}

// endTransaction sends the binding's check, the reset's part that runs before the
// end, COMMIT or ROLLBACK, and the rest of the reset, in one round trip, and tells
// from each statement's result what happened: which step failed decides whether the
// transaction committed and whether the reset still has to run (a second round trip,
// on failures only). With apart, the server answers the check before COMMIT begins.
// In pgx's default mode the standard end goes as the connection's prepared statements
// (endPrepared); the other ends, and other modes, as scripts.
func endTransaction(ctx context.Context, pc *pgconn.PgConn, st *connState, b *binding, before, reset string, commit, apart bool) ending {
	var out ending
	if pc.IsClosed() { // it died before the end was sent: nothing committed
		out.close, out.rerun = true, commit
		return out
	}
	if pc.IsBusy() { // rows or batch results still unread: the connection cannot be reused
		out.err, out.close = errResultsOpen, true
		return out
	}
	var scripts []string
	prepared := false // the standard end, as prepared statements
	switch pc.TxStatus() {
	case 'I': // the handler ended it
		out.lost, scripts = true, []string{before + reset}
	case 'E': // failed: nothing to check or commit
		scripts = []string{"ROLLBACK; " + before + reset}
		if commit {
			out.err = pgx.ErrTxCommitRollback
		}
	default:
		switch standard := before == beforeEndSQL && reset == resetSQL; {
		case before == beforeEndSQL && reset == st.reset && st.named():
			prepared = true
		case standard && commit && apart:
			scripts = b.commitApart
		case standard && commit:
			scripts = []string{b.commit}
		case standard:
			scripts = []string{b.rollback}
		case commit && apart: // SQL PREPARE to deallocate, or start-up parameters to set again
			scripts = []string{b.check, before + "COMMIT; " + reset}
		case commit:
			scripts = []string{b.check + before + "COMMIT; " + reset}
		default:
			scripts = []string{b.check + before + "ROLLBACK; " + reset}
		}
	}
	var results []*pgconn.Result
	var err error
	if prepared {
		results, err = endPrepared(ctx, pc, st, b, commit, apart)
	} else {
		results, err = execEach(ctx, pc, scripts...)
	}
	checked := prepared || strings.HasPrefix(scripts[0], b.check) // the check went first
	out.committed = completed(results, "COMMIT")
	ended := out.committed || completed(results, "ROLLBACK")
	switch {
	case err == nil:
	case sqlState(err) == sqlIntactCheckFailed: // a chained or rebound transaction: not ours
		out.lost = true
		_, err = pc.Exec(ctx, "ROLLBACK; "+before+reset).ReadAll()
		out.close = err != nil
	case ended || out.lost: // ended as asked; a reset statement failed
		out.close = true
	case lostEndStatement(err): // before COMMIT: nothing committed
		out.close, out.rerun = true, commit
	case pc.IsClosed(): // the connection died before COMMIT's (or ROLLBACK's) reply
		out.close = true
		if commit && checked {
			out.doubt, out.rerun, out.err = diedAtCommit(results, err)
		}
	case pc.TxStatus() == 'I': // COMMIT or ROLLBACK failed, so the reset did not run
		out.err = err
		_, err = pc.Exec(ctx, before+reset).ReadAll()
		out.close = err != nil
	default:
		out.err, out.close = err, true
	}
	return out
}

// execEach sends each script as a Query message of its own, all in one write, and
// reads their results: one round trip, but the server answers (and flushes) a script
// before it reads the next, so the check's answer is on its way before COMMIT begins.
// A script that fails skips the rest of its own statements only. The error is the
// first statement's error, or the connection's.
func execEach(ctx context.Context, pc *pgconn.PgConn, scripts ...string) ([]*pgconn.Result, error) {
	if len(scripts) == 1 {
		return pc.Exec(ctx, scripts[0]).ReadAll()
	}
	fe := pc.Frontend()
	for _, script := range scripts {
		fe.Send(&pgproto3.Query{String: script})
	}
	if err := fe.Flush(); err != nil {
		_ = pc.Conn().Close() // it may have sent part of a message: unusable
		return nil, err
	}
	results, _, err := readResults(ctx, pc, nil, len(scripts))
	return results, err
}

// resultMemory is memory readResults reuses, one per connection: an end allocates
// nothing for its results in the steady state.
type resultMemory struct {
	results []pgconn.Result
	values  []byte
	tags    map[string]pgconn.CommandTag
}

func (rb *resultMemory) reset() {
	if cap(rb.results) == 0 {
		rb.results = make([]pgconn.Result, 0, 32)
	}
	rb.results, rb.values = rb.results[:0], rb.values[:0]
}

// result is a new, empty result.
func (rb *resultMemory) result() *pgconn.Result {
	if len(rb.results) == cap(rb.results) { // those handed out keep the old array
		rb.results = make([]pgconn.Result, 0, 2*cap(rb.results))
	}
	rb.results = append(rb.results, pgconn.Result{})
	return &rb.results[len(rb.results)-1]
}

// row copies a row's values (pgconn reuses its read buffer).
func (rb *resultMemory) row(values [][]byte) [][]byte {
	row := make([][]byte, len(values))
	for i, v := range values {
		if v != nil {
			start := len(rb.values)
			rb.values = append(rb.values, v...) // a new array leaves earlier values in the old one
			row[i] = rb.values[start:len(rb.values):len(rb.values)]
		}
	}
	return row
}

// tag returns a command tag, kept for the tags an end sees again and again.
func (rb *resultMemory) tag(b []byte) pgconn.CommandTag {
	if t, ok := rb.tags[string(b)]; ok {
		return t
	}
	t := pgconn.NewCommandTag(string(b))
	if rb.tags == nil {
		rb.tags = make(map[string]pgconn.CommandTag)
	}
	if len(rb.tags) < 64 { // the end's own tags; an application's INSERT 0 n vary
		rb.tags[t.String()] = t
	}
	return t
}

// readResults reads what the server answers until its syncs-th ReadyForQuery: each
// statement's rows (copied) and command tag, or its error, and how many statements
// it parsed (Parse messages). The error is the first statement's error, or the
// connection's.
//
// ctx bounds the whole read: its deadline, or its end, sets the connection's read
// deadline (pgconn's ReceiveMessage would watch ctx anew for each message).
//
// The results live in rb's memory (a new one when nil) until its next use.
func readResults(ctx context.Context, pc *pgconn.PgConn, rb *resultMemory, syncs int) (results []*pgconn.Result, parsed int, err error) {
	if rb == nil {
		rb = &resultMemory{}
	}
	rb.reset()
	conn := pc.Conn()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer func() {
		if stop() {
			_ = conn.SetReadDeadline(time.Time{})
		} else if !pc.IsClosed() { // ctx ended: its deadline may land after any reset
			_ = conn.Close()
		}
	}()
	var current *pgconn.Result
	var first error
	for ready := 0; ready < syncs; {
		msg, err := pc.ReceiveMessage(context.Background())
		if err != nil {
			if !pc.IsClosed() {
				_ = conn.Close() // a cancelled read leaves the replies unread
			}
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return results, parsed, err
		}
		switch msg := msg.(type) {
		case *pgproto3.ParseComplete:
			parsed++
		case *pgproto3.RowDescription:
			current = rb.result()
		case *pgproto3.DataRow:
			if current == nil {
				current = rb.result()
			}
			current.Rows = append(current.Rows, rb.row(msg.Values))
		case *pgproto3.CommandComplete:
			if current == nil {
				current = rb.result()
			}
			current.CommandTag = rb.tag(msg.CommandTag)
			results, current = append(results, current), nil
		case *pgproto3.ErrorResponse:
			r := rb.result()
			r.Err = pgconn.ErrorResponseToPgError(msg)
			results, current = append(results, r), nil
			if first == nil {
				first = r.Err
			}
		case *pgproto3.ReadyForQuery:
			ready++
		}
	}
	return results, parsed, first
}

// diedAtCommit tells, for a connection that died in the round trip that was to commit,
// what can be known from the results that came back. The check answers the
// transaction's id if it wrote: with it, the outcome can be asked for; without (it
// wrote nothing) there is nothing to lose by running again. If the check's answer
// never came, but the server's own FATAL for a terminated backend or a shutdown did,
// the server died before it finished the check (it sends its output in order), so
// before COMMIT: nothing committed. Otherwise the outcome is unknown: ErrCommitUnknown.
// When the check was answered apart, before COMMIT began, that means the network (or
// a proxy) failed, or the server crashed before it finished the check; otherwise the
// server may also have crashed after COMMIT, before it sent the answers. pgconn's
// SafeToRetry cannot tell either: a failed read comes back as "conn closed", which it
// calls safe.
func diedAtCommit(results []*pgconn.Result, err error) (tx inDoubt, rerun bool, unknown error) {
	if len(results) > 0 && results[0].Err == nil && len(results[0].Rows) == 1 && len(results[0].Rows[0]) == 3 {
		if row := results[0].Rows[0]; row[1] != nil {
			return inDoubt{xid: string(row[1]), began: string(row[2])}, false, nil
		}
		return inDoubt{}, true, nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Severity == "FATAL" && serverTerminated[pgErr.Code] {
		return inDoubt{}, true, nil
	}
	return inDoubt{}, false, fmt.Errorf("%w: %w", ErrCommitUnknown, err)
}

// serverTerminated are the SQLSTATEs of the FATAL a backend sends when it is made to
// end: pg_terminate_backend or a fast shutdown (57P01), an idle transaction timing
// out (25P03). (A crash or an immediate shutdown sends a warning, not a FATAL, and
// nothing is known from it.)
var serverTerminated = map[string]bool{"57P01": true, "25P03": true}

// completed reports whether a statement with the given command tag completed.
func completed(results []*pgconn.Result, tag string) bool {
	for _, r := range results {
		if r.Err == nil && r.CommandTag.String() == tag {
			return true
		}
	}
	return false
}

// errResultsOpen is the error of a transaction whose results were still being read at
// its end: a handler that left rows open, or a response that began to stream (or ended)
// inside a loop over rows.
var errResultsOpen = errors.New("tenant: a query's results were still being read when the transaction had to end: " +
	"close them first, or make the route tenant.ReadOnly to stream while reading")

// commitFailed is the lifecycle error for a COMMIT that failed: ErrCommitFailed, or
// ErrCommitUnknown when it may have committed.
func commitFailed(err error) error {
	if errors.Is(err, ErrCommitUnknown) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrCommitFailed, err)
}

// errRollbackFailed marks a failed ROLLBACK: logged, never shown to the client.
var errRollbackFailed = errors.New("tenant: rollback failed")
