package tenant

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// ErrSessionEnded is returned by a session used after its transaction ended: the
// response began streaming (Flush, Hijack, a large body) or the request finished.
var ErrSessionEnded = errors.New("tenant: the request's transaction has already ended (response streamed or request finished)")

// finishTimeout bounds COMMIT/ROLLBACK, which run even when the request was cancelled.
const finishTimeout = 30 * time.Second

// session is the lazy, request-scoped transaction behind tenantctx.Session. Nothing
// touches the pool until the first call; that call acquires a connection and runs
// BEGIN and SET LOCAL search_path in one round trip.
type session struct {
	pool      *pgxpool.Pool
	beginSQL  string
	mu        sync.Mutex
	tx        *observedTx // the request's transaction, once begun
	ended     bool
	conflict  bool  // a serialization failure, deadlock or stale plan was seen
	beginErr  error // the transaction could not begin (database unreachable)
	committed bool
}

var _ tenantctx.DB = (*session)(nil)

func (m *Manager) newSession(name string) *session {
	return &session{
		pool: m.pool,
		// name is validated; schema.SearchPath quotes it with pgx.Identifier anyway.
		beginSQL: "BEGIN ISOLATION LEVEL " + m.isolation + "; SET LOCAL search_path TO " + schema.SearchPath(name),
	}
}

// current returns the transaction, beginning it on first use.
func (s *session) current(ctx context.Context) (*observedTx, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, ErrSessionEnded
	}
	if s.tx == nil {
		tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: s.beginSQL})
		if err != nil {
			if ctx.Err() == nil {
				s.beginErr = err
			}
			return nil, fmt.Errorf("tenant: begin: %w", err)
		}
		s.tx = &observedTx{Tx: tx, s: s}
	}
	return s.tx, nil
}

// observe remembers errors that call for running the work again.
func (s *session) observe(err error) {
	if err != nil && isRetryable(err) {
		s.mu.Lock()
		s.conflict = true
		s.mu.Unlock()
	}
}

func (s *session) sawConflict() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflict
}

func (s *session) beginFailed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.beginErr
}

// finish commits or rolls back (if a transaction began) and ends the session: later
// calls fail with ErrSessionEnded. It runs even when ctx is cancelled.
func (s *session) finish(ctx context.Context, commit bool) error {
	s.mu.Lock()
	tx := s.tx
	s.tx, s.ended = nil, true
	s.mu.Unlock()
	if tx == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if !commit {
		return tx.Rollback(ctx)
	}
	err := tx.Commit(ctx) // observed: a conflict at COMMIT runs the request again
	if err == nil {
		s.mu.Lock()
		s.committed = true
		s.mu.Unlock()
	}
	return err
}

// errRollbackFailed marks a failed ROLLBACK: logged, never shown to the client.
var errRollbackFailed = errors.New("tenant: rollback failed")

// end finishes one attempt; last says no attempt follows. A transaction that saw a
// conflict rolls back and asks to run again (unless last: ErrConflict). Otherwise it
// commits or rolls back as asked; a COMMIT that fails with a conflict asks to run
// again (unless last: ErrConflict), any other COMMIT failure is ErrCommitFailed. A
// failed ROLLBACK is errRollbackFailed.
func (s *session) end(ctx context.Context, commit, last bool) (retry bool, err error) {
	if s.sawConflict() {
		_ = s.finish(ctx, false)
		if !last {
			return true, nil
		}
		return false, fmt.Errorf("%w: retries exhausted", ErrConflict)
	}
	err = s.finish(ctx, commit)
	switch {
	case err == nil:
		return false, nil
	case !commit:
		return false, fmt.Errorf("%w: %w", errRollbackFailed, err)
	case isRetryable(err) && !last:
		return true, nil
	case isRetryable(err):
		return false, fmt.Errorf("%w: retries exhausted: %w", ErrConflict, err)
	default:
		return false, fmt.Errorf("%w: %w", ErrCommitFailed, err)
	}
}

func (s *session) didCommit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committed
}

func (s *session) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tx, err := s.current(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return tx.Exec(ctx, sql, args...)
}

func (s *session) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	tx, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Query(ctx, sql, args...)
}

func (s *session) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	tx, err := s.current(ctx)
	if err != nil {
		return tenantctx.ErrRow{Err: err}
	}
	return tx.QueryRow(ctx, sql, args...)
}

func (s *session) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	tx, err := s.current(ctx)
	if err != nil {
		return tenantctx.ErrBatchResults{Err: err}
	}
	return tx.SendBatch(ctx, b)
}

func (s *session) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	tx, err := s.current(ctx)
	if err != nil {
		return 0, err
	}
	return tx.CopyFrom(ctx, table, columns, src)
}

// Begin starts a savepoint inside the request's transaction. Errors inside it count
// like any other: a conflict there runs the request again even if the savepoint is
// rolled back, since the transaction's view may no longer be consistent.
func (s *session) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Begin(ctx)
}

// isRetryable: serialization failure, deadlock, or "cached plan must not change result
// type" (a migration changed a table under a prepared statement). Running the work
// again in a fresh transaction succeeds for all three.
func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40001", "40P01":
		return true
	case "0A000":
		return pgErr.Message == "cached plan must not change result type"
	}
	return false
}
