package tenant

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The wrappers below hand every error a handler can meet (a row scan, iteration, a
// batch, a savepoint) to the session, which notes conflicts that call for running the
// request again, even when the handler swallows them.

// observedTx is the request's transaction, or a savepoint in it, whose errors the
// session sees.
type observedTx struct {
	pgx.Tx
	s *session
}

// Begin starts a savepoint that is observed too.
func (t *observedTx) Begin(ctx context.Context) (pgx.Tx, error) {
	sp, err := t.Tx.Begin(ctx)
	if err != nil {
		t.s.observe(err)
		return nil, err
	}
	return &observedTx{Tx: sp, s: t.s}, nil
}

func (t *observedTx) Commit(ctx context.Context) error {
	err := t.Tx.Commit(ctx)
	t.s.observe(err)
	return err
}

func (t *observedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.Tx.Exec(ctx, sql, args...)
	t.s.observe(err)
	return tag, err
}

func (t *observedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := t.Tx.Query(ctx, sql, args...)
	if err != nil {
		t.s.observe(err)
		return nil, err
	}
	return &observedRows{Rows: rows, s: t.s}, nil
}

func (t *observedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return observedRow{row: t.Tx.QueryRow(ctx, sql, args...), s: t.s}
}

func (t *observedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return &observedBatch{BatchResults: t.Tx.SendBatch(ctx, b), s: t.s}
}

func (t *observedTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	n, err := t.Tx.CopyFrom(ctx, table, columns, src)
	t.s.observe(err)
	return n, err
}

// observedRows reports the error that ends iteration to the session.
type observedRows struct {
	pgx.Rows
	s *session
}

func (r *observedRows) Err() error {
	err := r.Rows.Err()
	r.s.observe(err)
	return err
}

func (r *observedRows) Close() {
	r.Rows.Close()
	r.s.observe(r.Rows.Err())
}

type observedRow struct {
	row pgx.Row
	s   *session
}

func (r observedRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	r.s.observe(err)
	return err
}

type observedBatch struct {
	pgx.BatchResults
	s *session
}

func (b *observedBatch) Exec() (pgconn.CommandTag, error) {
	tag, err := b.BatchResults.Exec()
	b.s.observe(err)
	return tag, err
}

func (b *observedBatch) Query() (pgx.Rows, error) {
	rows, err := b.BatchResults.Query()
	if err != nil {
		b.s.observe(err)
		return nil, err
	}
	return &observedRows{Rows: rows, s: b.s}, nil
}

func (b *observedBatch) QueryRow() pgx.Row {
	return observedRow{row: b.BatchResults.QueryRow(), s: b.s}
}

func (b *observedBatch) Close() error {
	err := b.BatchResults.Close()
	b.s.observe(err)
	return err
}
