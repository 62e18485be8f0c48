package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A batch the session sends itself goes as pgx's pipelined batch does, with two
// differences: statements not yet described for the binding are described inside the
// transaction (pgx would describe them before the batch's own BEGIN), and a batch that
// is the transaction's first call rides behind the begin. With every description
// known that is one round trip for begin and batch.

// batchSendsItself reports whether the session can send every query of b itself.
func batchSendsItself(b *pgx.Batch) bool {
	for _, q := range b.QueuedQueries {
		if !sendsItself(q.SQL, q.Arguments) {
			return false
		}
	}
	return len(b.QueuedQueries) > 0
}

// batchOn sends b on conn, after the begin when begin is set. The error is the
// begin's; the batch's own errors are in its results.
func (s *session) batchOn(ctx context.Context, conn *pgx.Conn, b *pgx.Batch, begin bool) (*ownBatch, error) {
	st := stateOf(conn)
	queue := make([]statement, len(b.QueuedQueries))
	for i, q := range b.QueuedQueries {
		own := ownStatement(q.SQL, q.Arguments)
		sql, args, err := rewritten(ctx, conn, own.sql, own.args)
		if err != nil {
			p, beginErr := s.beginOnly(ctx, conn, begin, err)
			return failedBatch(p), beginErr
		}
		queue[i] = statement{sql: sql, args: args, formats: own.formats}
	}
	typed := st.mode != pgx.QueryExecModeExec
	sds := make([]*pgconn.StatementDescription, len(queue))
	var unknown []string // SQL to describe first, each once
	if typed {
		for i, q := range queue {
			if sds[i] = s.b.stmts.get(q.sql); sds[i] == nil && !slices.Contains(unknown, q.sql) {
				unknown = append(unknown, q.sql)
			}
		}
	}

	pl, err := startPipeline(ctx, conn)
	if err != nil {
		return nil, err
	}
	p := &pipelined{pl: pl}
	head := s.sendHead(pl, st, begin)
	// described are the statements prepared on the connection to describe them, and
	// parsed those parsed in the batch itself: they join the connection's cache once
	// the batch is sent (the described ones whatever happens next: the server has
	// them). Added one by one, they could evict each other while the batch needs them.
	// When the search_path was not the tenant's, those described are closed instead.
	var described, parsed []string
	intact := true
	defer func() {
		for _, name := range described {
			if intact {
				st.add(name)
			} else {
				st.drop(name)
			}
		}
	}()
	if len(unknown) > 0 { // describe them, in the transaction, then send the batch
		var fresh []*pgconn.StatementDescription
		intact = begin // until the path check answers
		names := make([]string, len(unknown))
		again := make([]bool, len(unknown))
		for i, sql := range unknown {
			names[i] = statementName(s.b.key, sql)
			again[i] = s.prepareAgain(pl, st, names[i], sql)
		}
		s.sendPathCheck(pl, begin)
		if err := pl.Sync(); err != nil {
			return nil, err
		}
		if err := s.readHead(p, st, head); err != nil || p.err != nil {
			return failedBatch(p), err
		}
		for i, sql := range unknown {
			if again[i] {
				if _, p.err = pl.GetResults(); p.err != nil {
					return failedBatch(p), nil
				}
			}
			sd := p.description()
			if p.err != nil {
				p.err = fmt.Errorf("tenant: batch: describe %q: %w", sql, p.err)
				return failedBatch(p), nil
			}
			sd.Name, sd.SQL = names[i], sql
			fresh = append(fresh, sd)
			if st.named() {
				described = append(described, sd.Name)
			}
			for j := range queue {
				if queue[j].sql == sql {
					sds[j] = sd
				}
			}
		}
		if intact = begin || p.pathIntact(); p.err != nil {
			return failedBatch(p), nil
		}
		for _, sd := range fresh {
			if intact { // else described in another schema: this request's alone (see sendPathCheck)
				s.b.stmts.put(sd)
			}
		}
		if p.err = pl.Close(); p.err != nil {
			return failedBatch(p), nil
		}
		pl = conn.PgConn().StartPipeline(ctx)
		p.pl, head = pl, pipelineHead{}
	}

	// Every query's arguments are encoded before any query is queued: a batch whose
	// last query cannot be encoded must not run its first.
	builders := make([]pgx.ExtendedQueryBuilder, len(queue))
	for i, q := range queue {
		if err := build(conn, &builders[i], sds[i], q.args, q.formats); err != nil {
			p.err = fmt.Errorf("tenant: batch: query %d: %w", i, err)
			if err := pl.Sync(); err != nil {
				return nil, err
			}
			if err := s.readHead(p, st, head); err != nil {
				return nil, err
			}
			return failedBatch(p), nil
		}
	}
	br := &ownBatch{s: s, conn: conn, p: p, queue: b.QueuedQueries, skip: make([]bool, len(queue)), sent: queue, sds: sds}
	for i, q := range queue {
		sd, bq := sds[i], &builders[i]
		switch {
		case !typed:
			pl.SendQueryParams(q.sql, bq.ParamValues, nil, bq.ParamFormats, bq.ResultFormats)
		case !st.named():
			pl.SendQueryParams(q.sql, bq.ParamValues, sd.ParamOIDs, bq.ParamFormats, bq.ResultFormats)
		case st.has(sd.Name) || slices.Contains(described, sd.Name) || slices.Contains(parsed, sd.Name):
			pl.SendQueryStatement(sd, bq.ParamValues, bq.ParamFormats, bq.ResultFormats)
		default:
			pl.SendPrepare(sd.Name, q.sql, sd.ParamOIDs)
			pl.SendQueryPrepared(sd.Name, bq.ParamValues, bq.ParamFormats, bq.ResultFormats)
			parsed = append(parsed, sd.Name)
			br.skip[i] = true
		}
	}
	if err := pl.Sync(); err != nil {
		return nil, err
	}
	if err := s.readHead(p, st, head); err != nil {
		return nil, err
	}
	br.err = p.err // a savepoint command failed: the batch did not run
	for _, name := range parsed {
		st.add(name)
	}
	return br, nil
}

// ownBatch is the pgx.BatchResults of a batch the session sent itself.
type ownBatch struct {
	s      *session
	conn   *pgx.Conn
	p      *pipelined
	queue  []*pgx.QueuedQuery
	sent   []statement                    // the queries as sent (rewritten)
	sds    []*pgconn.StatementDescription // their descriptions (nil in exec mode)
	skip   []bool                         // a description comes before the query's results (it was parsed in the batch)
	next   int
	err    error
	last   pgx.Rows
	closed bool
}

// failedBatch is the results of a batch that failed before it ran.
func failedBatch(p *pipelined) *ownBatch {
	return &ownBatch{p: p, err: p.err}
}

var errBatchClosed = errors.New("batch already closed")

// results reads the next query's results.
func (b *ownBatch) results() (*pgconn.ResultReader, error) {
	switch {
	case b.err != nil:
		return nil, b.err
	case b.closed:
		return nil, errBatchClosed
	case b.last != nil && b.last.Err() != nil:
		b.err = b.stale(b.next-1, b.last.Err())
		return nil, b.err
	case b.next >= len(b.queue):
		return nil, errors.New("no more results in batch")
	}
	i := b.next
	b.next++
	if b.skip[i] {
		if b.p.description(); b.p.err != nil {
			b.err = b.stale(i, b.p.err)
			return nil, b.err
		}
	}
	if b.p.next(); b.p.err != nil {
		b.err = b.stale(i, b.p.err)
		return nil, b.err
	}
	return b.p.rr, nil
}

// stale forgets query i's description and prepared statement when err says they
// must not be used again (see staleStatement), as a single statement's failure does,
// and returns err.
func (b *ownBatch) stale(i int, err error) error {
	if i < 0 || i >= len(b.sds) || b.sds[i] == nil || !staleStatement(err) {
		return err
	}
	b.s.b.stmts.forget(b.sent[i].sql)
	if st := stateOf(b.conn); st.named() {
		st.drop(b.sds[i].Name)
	}
	return err
}

func (b *ownBatch) Exec() (pgconn.CommandTag, error) {
	rr, err := b.results()
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := rr.Close()
	if err != nil {
		b.err = b.stale(b.next-1, err)
	}
	return tag, err
}

func (b *ownBatch) Query() (pgx.Rows, error) {
	rr, err := b.results()
	if err != nil {
		return nil, err
	}
	b.last = pgx.RowsFromResultReader(b.conn.TypeMap(), rr)
	return b.last, nil
}

func (b *ownBatch) QueryRow() pgx.Row {
	rows, err := b.Query()
	if err != nil {
		return rowOf{rows: errRows{err}}
	}
	return rowOf{rows: rows}
}

// Tx returns nil: the batch runs in the request's transaction, and a batch that
// begins one of its own (Batch.BeginTx) has no place inside it.
func (b *ownBatch) Tx() pgx.Tx { return nil }

// Close reads the results left, calling the queries' own functions as pgx does, and
// ends the pipeline.
func (b *ownBatch) Close() error {
	if b.closed {
		return b.err
	}
	if b.err == nil && b.last != nil && b.last.Err() != nil {
		b.err = b.stale(b.next-1, b.last.Err())
	}
	for b.err == nil && b.next < len(b.queue) {
		if fn := b.queue[b.next].Fn; fn != nil {
			if err := fn(b); err != nil && b.err == nil {
				b.err = err
			}
		} else {
			_, _ = b.Exec()
		}
	}
	b.closed = true
	if b.p != nil && b.p.pl != nil {
		if err := b.p.pl.Close(); b.err == nil {
			b.err = err
		}
	}
	return b.err
}
