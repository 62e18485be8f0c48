package tenantctx

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantkit/tenant/internal/scope"
)

// noSession is the DB outside a tenant lifecycle: every call fails with ErrNoSession.
type noSession struct{}

func (noSession) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, ErrNoSession
}

func (noSession) Query(context.Context, string, ...any) (pgx.Rows, error) { return nil, ErrNoSession }

func (noSession) QueryRow(context.Context, string, ...any) pgx.Row {
	return scope.FailedRow{Err: ErrNoSession}
}

func (noSession) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults {
	return scope.FailedBatch{Err: ErrNoSession}
}

func (noSession) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, ErrNoSession
}

func (noSession) Begin(context.Context) (pgx.Tx, error) { return nil, ErrNoSession }
