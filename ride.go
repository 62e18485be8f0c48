package tenant

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// What rides with the begin besides a statement the session prepares: a COPY's table
// description, and an Exec without arguments.

// describeWithBegin begins the transaction on conn and describes sql (unnamed) in the
// same round trip. beginErr is the begin's error; stmtErr the describe's.
func (s *session) describeWithBegin(ctx context.Context, conn *pgx.Conn, sql string) (sd *pgconn.StatementDescription, stmtErr, beginErr error) {
	st := stateOf(conn)
	pl, err := startPipeline(ctx, conn)
	if err != nil {
		return nil, nil, err
	}
	p := &pipelined{pl: pl}
	head := s.sendHead(p.pl, st, true)
	p.pl.SendPrepare("", sql, nil)
	if err := p.pl.Sync(); err != nil {
		return nil, nil, err
	}
	if err := s.readHead(p, st, head); err != nil {
		return nil, nil, err
	}
	if p.err == nil {
		sd = p.description()
	}
	return sd, p.close(), nil
}

// execWithBegin sends the begin and sql (with the queued savepoint commands before it)
// as two simple-protocol queries in one write: sql may hold several statements, as
// pgx's Exec without arguments allows. If the begin fails, the transaction it opened
// is aborted and the server refuses sql. beginErr is the begin's error; stmtErr sql's.
func (s *session) execWithBegin(ctx context.Context, conn *pgx.Conn, sql string) (tag pgconn.CommandTag, stmtErr, beginErr error) {
	begin := s.beginSQL()
	script := s.b.keyed(sql)
	if len(s.pending) > 0 {
		script = strings.Join(s.pending, "; ") + "; " + script
		s.pending = nil
	}
	results, err := execEach(ctx, conn.PgConn(), begin, script)
	n := 1 + len(s.b.bindParts) // BEGIN, then the binding's statements: the script's results
	for i := 0; i < n; i++ {
		switch {
		case i >= len(results) && err != nil:
			return tag, nil, err
		case i >= len(results):
			return tag, nil, fmt.Errorf("tenant: begin: %d of %d results", len(results), n)
		case results[i].Err != nil:
			return tag, nil, results[i].Err
		}
	}
	if len(results) > n {
		tag = results[len(results)-1].CommandTag
	}
	return tag, err, nil
}
