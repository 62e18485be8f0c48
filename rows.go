package tenant

import (
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// rows returns the statement's rows: the pipeline closes when they do.
func (p *pipelined) rows(conn *pgx.Conn) pgx.Rows {
	return &pipelinedRows{Rows: pgx.RowsFromResultReader(conn.TypeMap(), p.rr), p: p}
}

// pipelinedRows are a statement's rows read from its pipeline, which they close when
// they end (pgx's rows close themselves after the last row).
type pipelinedRows struct {
	pgx.Rows
	p      *pipelined
	closed bool
	err    error // the pipeline's, when the rows had none
}

func (r *pipelinedRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *pipelinedRows) Close() {
	r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.err = r.p.pl.Close()
		r.p.traced(r.Rows.CommandTag(), r.Err())
	}
}

func (r *pipelinedRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// rowOf is pgx's QueryRow over rows: the first row, or pgx.ErrNoRows.
type rowOf struct{ rows pgx.Rows }

func (r rowOf) Scan(dest ...any) error {
	defer r.rows.Close()
	if err := r.rows.Err(); err != nil {
		return err
	}
	for _, d := range dest {
		if _, ok := d.(*pgtype.DriverBytes); ok {
			return errors.New("cannot scan into *pgtype.DriverBytes from QueryRow")
		}
	}
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	_ = r.rows.Scan(dest...)
	r.rows.Close()
	return r.rows.Err()
}

// errRows are rows that failed before they were read.
type errRows struct{ err error }

func (r errRows) Close()                                       {}
func (r errRows) Err() error                                   { return r.err }
func (r errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (r errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (r errRows) Next() bool                                   { return false }
func (r errRows) Scan(...any) error                            { return r.err }
func (r errRows) Values() ([]any, error)                       { return nil, r.err }
func (r errRows) RawValues() [][]byte                          { return nil }
func (r errRows) Conn() *pgx.Conn                              { return nil }
func (r errRows) TypeMap() *pgtype.Map                         { return nil }
