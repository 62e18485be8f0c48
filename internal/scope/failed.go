package scope

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// FailedRow is a pgx.Row whose Scan returns Err: what a session returns when it
// cannot query.
type FailedRow struct{ Err error }

// Scan returns r.Err.
func (r FailedRow) Scan(...any) error { return r.Err }

// FailedBatch is a pgx.BatchResults whose every method returns Err.
type FailedBatch struct{ Err error }

// Exec returns b.Err.
func (b FailedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.Err }

// Query returns b.Err.
func (b FailedBatch) Query() (pgx.Rows, error) { return nil, b.Err }

// QueryRow returns a row whose Scan returns b.Err.
func (b FailedBatch) QueryRow() pgx.Row { return FailedRow(b) }

// Close returns b.Err.
func (b FailedBatch) Close() error { return b.Err }

// Tx returns nil: no transaction was begun.
func (b FailedBatch) Tx() pgx.Tx { return nil }
