package tenantctx

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// noSession is the DB outside a tenant lifecycle: every call fails with ErrNoSession.
type noSession struct{}

func (noSession) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, ErrNoSession
}

func (noSession) Query(context.Context, string, ...any) (pgx.Rows, error) { return nil, ErrNoSession }

func (noSession) QueryRow(context.Context, string, ...any) pgx.Row { return ErrRow{Err: ErrNoSession} }

func (noSession) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults {
	return ErrBatchResults{Err: ErrNoSession}
}

func (noSession) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, ErrNoSession
}

func (noSession) Begin(context.Context) (pgx.Tx, error) { return nil, ErrNoSession }

// ErrRow is a pgx.Row whose Scan returns Err; sessions return it when they cannot query.
type ErrRow struct{ Err error }

// Scan returns r.Err.
func (r ErrRow) Scan(...any) error { return r.Err }

// ErrBatchResults is a pgx.BatchResults whose every method returns Err.
type ErrBatchResults struct{ Err error }

// Exec returns b.Err.
func (b ErrBatchResults) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.Err }

// Query returns b.Err.
func (b ErrBatchResults) Query() (pgx.Rows, error) { return nil, b.Err }

// QueryRow returns a row whose Scan returns b.Err.
func (b ErrBatchResults) QueryRow() pgx.Row { return ErrRow(b) }

// Close returns b.Err.
func (b ErrBatchResults) Close() error { return b.Err }

// Tx returns nil: no transaction was begun.
func (b ErrBatchResults) Tx() pgx.Tx { return nil }
