package tenant

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantkit/tenant/internal/scope"
	"github.com/tenantkit/tenant/tenantctx"
)

// The wrappers below hand every error a handler can meet (a row scan, iteration, a
// batch, a savepoint) to the session, which notes conflicts that call for running the
// request again, even when the handler swallows them. Each reads from the connection
// under the session's lock and not at all once the session ended (the connection may
// serve another request by then). None of them hands out the raw connection:
// statements sent on it would bypass the tenant's statement key and the session's
// checks.

// errNoPrepare is returned by a savepoint's Prepare.
var errNoPrepare = errors.New("tenant: Prepare is not available in a tenant session: " +
	"statements are prepared and cached per tenant and schema version by themselves")

// savepoint is a pgx.Tx inside the request's transaction. Its statements go through
// the session, with the tenant's key and checks.
type savepoint struct {
	s      *session
	name   string
	closed atomic.Bool
}

var _ pgx.Tx = (*savepoint)(nil)

// Begin starts a savepoint inside this one.
func (sp *savepoint) Begin(ctx context.Context) (pgx.Tx, error) {
	if sp.closed.Load() {
		return nil, pgx.ErrTxClosed
	}
	return sp.s.Begin(ctx)
}

// Commit releases the savepoint.
func (sp *savepoint) Commit(ctx context.Context) error { return sp.end(ctx, releaseSavepoint) }

// releaseSavepoint is RELEASE's verb, which onlyReleases looks for.
const releaseSavepoint = "RELEASE SAVEPOINT "

// Rollback rolls back to the savepoint (the request's transaction goes on).
func (sp *savepoint) Rollback(ctx context.Context) error {
	return sp.end(ctx, "ROLLBACK TO SAVEPOINT ")
}

func (sp *savepoint) end(ctx context.Context, verb string) error {
	if sp.closed.Swap(true) {
		return pgx.ErrTxClosed
	}
	return sp.s.endSavepoint(ctx, verb, sp.name)
}

func (sp *savepoint) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if sp.closed.Load() {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	return sp.s.Exec(ctx, sql, args...)
}

func (sp *savepoint) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if sp.closed.Load() {
		return nil, pgx.ErrTxClosed
	}
	return sp.s.Query(ctx, sql, args...)
}

func (sp *savepoint) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if sp.closed.Load() {
		return scope.FailedRow{Err: pgx.ErrTxClosed}
	}
	return sp.s.QueryRow(ctx, sql, args...)
}

func (sp *savepoint) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if sp.closed.Load() {
		return pgx.FailedBatchResults(b, pgx.ErrTxClosed)
	}
	return sp.s.SendBatch(ctx, b)
}

func (sp *savepoint) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if sp.closed.Load() {
		return 0, pgx.ErrTxClosed
	}
	return sp.s.CopyFrom(ctx, table, columns, src)
}

// Prepare is refused: a named statement would outlive the request on a pooled
// connection, and the session already prepares per tenant and version.
func (sp *savepoint) Prepare(context.Context, string, string) (*pgconn.StatementDescription, error) {
	return nil, errNoPrepare
}

// LargeObjects is not available: large objects belong to the database, not to a
// tenant's schema, so any tenant could open another's by number. Its methods panic;
// keep binary data in bytea columns of the tenant's tables.
func (sp *savepoint) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

// Conn returns nil: see the note at the top of this file.
func (sp *savepoint) Conn() *pgx.Conn { return nil }

// observedRows reports the error that ends iteration to the session.
type observedRows struct {
	pgx.Rows
	s    *session
	gone bool // the session ended while these rows were open
}

// Next reads the next row, or reports false once the session ended.
func (r *observedRows) Next() bool {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.ended {
		r.gone = true
		return false
	}
	return r.Rows.Next()
}

func (r *observedRows) Scan(dest ...any) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.ended {
		return tenantctx.ErrSessionEnded
	}
	err := r.Rows.Scan(dest...)
	r.s.note(err)
	return err
}

func (r *observedRows) Values() ([]any, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.ended {
		return nil, tenantctx.ErrSessionEnded
	}
	return r.Rows.Values()
}

// RawValues returns nil once the session ended: the bytes would be the connection's
// buffer, which another request may be reading into.
func (r *observedRows) RawValues() [][]byte {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.ended {
		return nil
	}
	return r.Rows.RawValues()
}

func (r *observedRows) Err() error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.gone {
		return tenantctx.ErrSessionEnded
	}
	err := r.Rows.Err()
	r.s.note(err)
	return err
}

func (r *observedRows) Close() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.ended { // what was left unread went with the connection
		return
	}
	r.Rows.Close()
	r.s.note(r.Rows.Err())
}

func (r *observedRows) CommandTag() pgconn.CommandTag {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.Rows.CommandTag()
}

func (r *observedRows) FieldDescriptions() []pgconn.FieldDescription {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.Rows.FieldDescriptions()
}

// Conn returns nil: see the note at the top of this file.
func (r *observedRows) Conn() *pgx.Conn { return nil }

type observedRow struct {
	row pgx.Row
	s   *session
}

func (r observedRow) Scan(dest ...any) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.ended {
		return tenantctx.ErrSessionEnded
	}
	err := r.row.Scan(dest...)
	r.s.note(err)
	return err
}

type observedBatch struct {
	pgx.BatchResults
	s *session
}

func (b *observedBatch) Exec() (pgconn.CommandTag, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.s.batchOpen != nil {
		return pgconn.CommandTag{}, errConnBusy
	}
	if b.s.ended {
		return pgconn.CommandTag{}, tenantctx.ErrSessionEnded
	}
	tag, err := b.BatchResults.Exec()
	b.s.note(err)
	return tag, err
}

func (b *observedBatch) Query() (pgx.Rows, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.s.batchOpen != nil {
		return nil, errConnBusy
	}
	if b.s.ended {
		return nil, tenantctx.ErrSessionEnded
	}
	rows, err := b.BatchResults.Query()
	if err != nil {
		b.s.note(err)
		return nil, err
	}
	return &observedRows{Rows: rows, s: b.s}, nil
}

func (b *observedBatch) QueryRow() pgx.Row {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.s.batchOpen != nil {
		return scope.FailedRow{Err: errConnBusy}
	}
	if b.s.ended {
		return scope.FailedRow{Err: tenantctx.ErrSessionEnded}
	}
	return observedRow{row: b.BatchResults.QueryRow(), s: b.s}
}

// Close reads what is left of the batch and runs the queries' callbacks. They run
// without the session's lock, so that one calling the session gets errConnBusy (as
// pgx answers for a connection whose batch is open) instead of waiting for itself;
// the end of the request waits for Close.
func (b *observedBatch) Close() error {
	b.s.mu.Lock()
	if b.s.ended {
		b.s.mu.Unlock()
		return tenantctx.ErrSessionEnded
	}
	if b.s.batchOpen != nil { // another goroutine closes it
		b.s.mu.Unlock()
		return errConnBusy
	}
	open := make(chan struct{})
	b.s.batchOpen = open
	b.s.mu.Unlock()
	var err error
	defer func() { // also when a callback panics: the end of the request waits for this
		b.s.mu.Lock()
		defer b.s.mu.Unlock()
		b.s.batchOpen = nil
		close(open)
		b.s.note(err)
	}()
	err = b.BatchResults.Close()
	return err
}

// errConnBusy is what a call gets while a batch's callbacks run on the connection.
var errConnBusy = errors.New("tenant: conn busy: a batch is being closed (a batch's callbacks must not use the session)")
