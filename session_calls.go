package tenant

// The session's tenantctx.DB methods: each sends its statement itself when it can
// (pipeline.go, batch.go, ride.go), else through pgx, with the tenant's key.

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantkit/tenant/internal/scope"
)

// Exec runs sql. Without arguments it goes as pgx sends it, in the simple protocol (so
// it may hold several statements); with arguments as a prepared statement, in the
// round trip that begins the transaction if it is the first.
func (s *session) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batchOpen != nil {
		return pgconn.CommandTag{}, errConnBusy
	}
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
				s.watchState(sql)
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
	if s.batchOpen != nil {
		return nil, errConnBusy
	}
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
	if s.batchOpen != nil {
		return scope.FailedRow{Err: errConnBusy}
	}
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
	if s.batchOpen != nil {
		return scope.FailedBatch{Err: errConnBusy}
	}
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
			s.watchState(all.String())
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
	if s.batchOpen != nil {
		return 0, errConnBusy
	}
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
