package tenant

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// statement is one statement a handler sent, as the session sends it itself.
type statement struct {
	sql     string
	args    []any
	formats pgx.QueryResultFormatsByOID // result formats by type, when the caller chose them
}

// pipelined is a statement on its way: the pipeline it was sent in (the connection is
// in pipeline mode until close), and its results, or the error that stopped it.
type pipelined struct {
	pl  *pgconn.Pipeline
	rr  *pgconn.ResultReader
	err error

	// The connection's tracer, if any, hears of the statement's start and end.
	conn   *pgx.Conn
	tracer pgx.QueryTracer
	ctx    context.Context
}

// close reads what is left of the pipeline and returns the connection to normal use.
// It returns the statement's error, else the pipeline's.
func (p *pipelined) close() error {
	err := p.pl.Close()
	if p.err != nil {
		err = p.err
	}
	p.traced(pgconn.CommandTag{}, err)
	return err
}

// exec reads the statement's command tag and closes the pipeline.
func (p *pipelined) exec() (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	if p.err == nil {
		tag, p.err = p.rr.Close()
	}
	err := p.pl.Close()
	if p.err != nil {
		err = p.err
	}
	p.traced(tag, err)
	return tag, err
}

// traced tells the tracer the statement ended, once.
func (p *pipelined) traced(tag pgconn.CommandTag, err error) {
	if p.tracer != nil {
		p.tracer.TraceQueryEnd(p.ctx, p.conn, pgx.TraceQueryEndData{CommandTag: tag, Err: err})
		p.tracer = nil
	}
}

// sendsItself reports whether the session can send a statement with these arguments
// itself: pgx's other per-query options (an exec mode, result formats by column) are
// pgx's to honour, and SQL without text is pgx's simple protocol. A QueryRewriter
// (pgx.NamedArgs) is applied by the session, and so are result formats by type
// (ownStatement), what database/sql clients ask for.
func sendsItself(sql string, args []any) bool {
	if sql == "" {
		return false
	}
	if len(args) > 0 {
		switch args[0].(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats:
			return false
		}
	}
	return true
}

// ownStatement is the statement the session sends itself for sql and args: a leading
// pgx.QueryResultFormatsByOID is taken out of the arguments into its formats.
func ownStatement(sql string, args []any) statement {
	if len(args) > 0 {
		if formats, ok := args[0].(pgx.QueryResultFormatsByOID); ok {
			return statement{sql: sql, args: args[1:], formats: formats}
		}
	}
	return statement{sql: sql, args: args}
}

// sendOn sends stmt on conn, preceded by the binding's begin when begin is set, in one
// round trip when the statement's description is known (for this tenant and version,
// from any connection), in two otherwise (the first describes it, inside the
// transaction, after the tenant's search_path is set: a description never comes from
// another schema or version). Every message goes before a single Sync: if the begin
// fails, the server skips the statement. The error is the begin's; the statement's own
// is in the result.
func (s *session) sendOn(ctx context.Context, conn *pgx.Conn, stmt statement, begin bool) (*pipelined, error) {
	st := stateOf(conn)
	sql, args := stmt.sql, stmt.args
	tctx := ctx
	if st.tracer != nil {
		tctx = st.tracer.TraceQueryStart(ctx, conn, pgx.TraceQueryStartData{SQL: sql, Args: args})
	}
	p, err := s.sendStatement(ctx, conn, st, stmt, begin)
	switch {
	case err != nil && st.tracer != nil:
		st.tracer.TraceQueryEnd(tctx, conn, pgx.TraceQueryEndData{Err: err})
	case err == nil:
		p.conn, p.tracer, p.ctx = conn, st.tracer, tctx
	}
	return p, err
}

// sendStatement is sendOn's work, untraced.
func (s *session) sendStatement(ctx context.Context, conn *pgx.Conn, st *connState, stmt statement, begin bool) (*pipelined, error) {
	sql, args, err := rewritten(ctx, conn, stmt.sql, stmt.args)
	if err != nil {
		return s.beginOnly(ctx, conn, begin, err)
	}
	var sd *pgconn.StatementDescription
	if st.mode != pgx.QueryExecModeExec {
		sd = s.b.stmts.get(sql)
	}
	var buildErr error
	if sd != nil || st.mode == pgx.QueryExecModeExec {
		buildErr = build(conn, &st.builder, sd, args, stmt.formats)
	}
	if buildErr != nil {
		return s.beginOnly(ctx, conn, begin, buildErr)
	}

	pl, err := startPipeline(ctx, conn)
	if err != nil {
		return nil, err
	}
	p := &pipelined{pl: pl}
	head := s.sendHead(p.pl, st, begin)
	var name string
	var reprepare bool
	switch {
	case st.mode == pgx.QueryExecModeExec:
		p.pl.SendQueryParams(sql, st.builder.ParamValues, nil, st.builder.ParamFormats, st.builder.ResultFormats)
	case sd == nil: // describe it first, in this transaction
		name = statementName(s.b.key, sql)
		reprepare = s.prepareAgain(p.pl, st, name, sql)
		s.sendPathCheck(p.pl, begin)
	case !st.named():
		p.pl.SendQueryParams(sql, st.builder.ParamValues, sd.ParamOIDs, st.builder.ParamFormats, st.builder.ResultFormats)
	case st.has(sd.Name):
		p.pl.SendQueryStatement(sd, st.builder.ParamValues, st.builder.ParamFormats, st.builder.ResultFormats)
	default: // known, not prepared on this connection: parse it with the known types
		p.pl.SendPrepare(sd.Name, sql, sd.ParamOIDs)
		p.pl.SendQueryPrepared(sd.Name, st.builder.ParamValues, st.builder.ParamFormats, st.builder.ResultFormats)
	}
	if err := p.pl.Sync(); err != nil {
		return nil, err // the connection is closed
	}
	if err := s.readHead(p, st, head); err != nil {
		return nil, err
	}
	if p.err != nil { // a savepoint command failed: the statement was skipped
		return p, nil
	}
	switch {
	case st.mode == pgx.QueryExecModeExec || (sd != nil && !st.named()):
		p.next()
	case sd == nil:
		if reprepare {
			if _, p.err = p.pl.GetResults(); p.err != nil {
				return p, nil
			}
		}
		fresh := p.description()
		if p.err != nil {
			return p, nil
		}
		fresh.Name, fresh.SQL, sd = name, sql, fresh
		intact := begin || p.pathIntact()
		if p.err != nil {
			return p, nil
		}
		switch {
		case intact:
			s.b.stmts.put(sd)
			if st.named() {
				st.add(name)
			}
		case st.named(): // described in another schema: this request's alone, and closed after it
			st.drop(name)
		}
		if p.err = p.pl.Close(); p.err != nil { // its Sync
			return p, nil
		}
		if p.err = build(conn, &st.builder, sd, args, stmt.formats); p.err != nil {
			return p, nil
		}
		p.pl = conn.PgConn().StartPipeline(ctx)
		if st.named() {
			p.pl.SendQueryStatement(sd, st.builder.ParamValues, st.builder.ParamFormats, st.builder.ResultFormats)
		} else {
			p.pl.SendQueryParams(sql, st.builder.ParamValues, sd.ParamOIDs, st.builder.ParamFormats, st.builder.ResultFormats)
		}
		if p.err = p.pl.Sync(); p.err == nil {
			p.next()
		}
	case st.has(sd.Name):
		p.next()
	default:
		if p.description(); p.err == nil {
			st.add(sd.Name)
			p.next()
		}
	}
	if p.err != nil && sd != nil && staleStatement(p.err) {
		s.b.stmts.forget(sql)
		if st.named() {
			st.drop(sd.Name)
		}
	}
	return p, nil
}

// prepareAgain queues the Parse and Describe of sql, to learn its description in the
// binding's transaction. In pgx's default mode the connection may have the statement
// already, under the same name (a binding made afresh for the same tenant, version and
// schema starts with no descriptions): it is closed first, and reprepared reports it
// (a result to read before the description).
func (s *session) prepareAgain(pl *pgconn.Pipeline, st *connState, name, sql string) (reprepared bool) {
	if !st.named() {
		pl.SendPrepare("", sql, nil)
		return false
	}
	if st.has(name) {
		pl.SendDeallocate(name)
		reprepared = true
	}
	pl.SendPrepare(name, sql, nil)
	return reprepared
}

// pathCheckSQL answers whether the transaction's search_path is still the one the
// binding's begin set (bindSQL's, with the binding's bindArgs).
const pathCheckSQL = "SELECT current_setting('search_path') = quote_ident($1) || $2"

// sendPathCheck queues pathCheckSQL after statements to describe, unless the begin goes
// in the same round trip (nothing can have changed the path before them). A handler
// that changed the search_path (SET LOCAL, set_config, RESET ALL) fails at its end,
// but a description learned meanwhile would be another schema's, and shared with the
// tenant's later requests: the check keeps it to this request.
func (s *session) sendPathCheck(pl *pgconn.Pipeline, begin bool) {
	if !begin {
		pl.SendQueryParams(pathCheckSQL, s.b.bindArgs, nil, nil, nil)
	}
}

// pathIntact reads pathCheckSQL's answer.
func (p *pipelined) pathIntact() bool {
	p.next()
	if p.err != nil {
		return false
	}
	intact := p.rr.NextRow() && string(p.rr.Values()[0]) == "t"
	_, p.err = p.rr.Close()
	return intact && p.err == nil
}

// beginOnly begins (when asked) without a statement, whose error was found before
// anything was sent: it is the result, the transaction begun as if it had run.
func (s *session) beginOnly(ctx context.Context, conn *pgx.Conn, begin bool, stmtErr error) (*pipelined, error) {
	pl, err := startPipeline(ctx, conn)
	if err != nil {
		return nil, err
	}
	p := &pipelined{pl: pl}
	if begin {
		st := stateOf(conn)
		pending := s.pending
		s.pending = nil // they stay queued for the next statement
		head := s.sendHead(p.pl, st, true)
		s.pending = pending
		if err := p.pl.Sync(); err != nil {
			return nil, err
		}
		if err := s.readHead(p, st, head); err != nil {
			return nil, err
		}
	} else if err := p.pl.Sync(); err != nil {
		return nil, err
	}
	p.err = stmtErr
	return p, nil
}

// startPipeline starts a pipeline on conn, or fails before anything is queued: when
// pgconn would refuse it (the connection busy with results still being read, closed,
// or ctx already done), sendHead must not take the statements to close and the
// savepoint commands from the connection and the session, since none would be sent.
func startPipeline(ctx context.Context, conn *pgx.Conn) (*pgconn.Pipeline, error) {
	pc := conn.PgConn()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case pc.IsClosed():
		return nil, errors.New("conn closed")
	case pc.IsBusy():
		return nil, errors.New("conn busy")
	}
	return pc.StartPipeline(ctx), nil
}

// readPlain reads the results of n statements without rows, up to the first error.
func (p *pipelined) readPlain(n int) error {
	for range n {
		res, err := p.pl.GetResults()
		if err == nil {
			if rr, ok := res.(*pgconn.ResultReader); ok {
				_, err = rr.Close()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// next reads the statement's results into p.
func (p *pipelined) next() {
	res, err := p.pl.GetResults()
	if err != nil {
		p.err = err
		return
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		p.err = fmt.Errorf("tenant: pipeline: expected results, got %T", res)
		return
	}
	p.rr = rr
}

// description reads a Prepare's result.
func (p *pipelined) description() *pgconn.StatementDescription {
	res, err := p.pl.GetResults()
	if err != nil {
		p.err = err
		return nil
	}
	sd, ok := res.(*pgconn.StatementDescription)
	if !ok {
		p.err = fmt.Errorf("tenant: pipeline: expected a statement description, got %T", res)
		return nil
	}
	return sd
}

// build encodes args for sd (nil: by their Go types) into the connection's builder,
// with the result formats asked for by type (none: pgx's choice).
func build(conn *pgx.Conn, b *pgx.ExtendedQueryBuilder, sd *pgconn.StatementDescription, args []any, formats pgx.QueryResultFormatsByOID) error {
	if sd != nil && len(sd.ParamOIDs) != len(args) {
		return fmt.Errorf("expected %d arguments, got %d", len(sd.ParamOIDs), len(args))
	}
	if err := b.Build(conn.TypeMap(), sd, args); err != nil {
		return err
	}
	if formats != nil && sd != nil {
		b.ResultFormats = b.ResultFormats[:0]
		for _, f := range sd.Fields {
			b.ResultFormats = append(b.ResultFormats, formats[f.DataTypeOID])
		}
	}
	return nil
}

// ownMode reports whether the session begins otherwise than its binding does: at the
// level of SetIsolation, or read-only.
func (s *session) ownMode() bool { return s.isolation != "" || s.readOnly }

// beginSQL is the binding's begin as one script, for the session's level and mode.
func (s *session) beginSQL() string {
	if s.ownMode() {
		return s.b.beginWith(s.isolation, s.readOnly)
	}
	return s.b.begin
}

// beginParts are the statements of the binding's begin, for the session's isolation
// level and mode.
func (s *session) beginParts() []string {
	if s.ownMode() {
		return s.b.beginPartsWith(s.isolation, s.readOnly)
	}
	return s.b.beginParts
}

// beginPrepared is the session's BEGIN, and the name it is prepared under.
func (s *session) beginPrepared() (stmt, name string) {
	if s.ownMode() {
		stmt = beginStatement(s.b.isolation, s.isolation, s.readOnly)
		return stmt, beginName(stmt)
	}
	return s.b.beginStmt, s.b.beginName
}

// rewritten applies a pgx.QueryRewriter (pgx.NamedArgs) given as the first argument,
// as pgx does.
func rewritten(ctx context.Context, conn *pgx.Conn, sql string, args []any) (string, []any, error) {
	if len(args) > 0 {
		if rw, ok := args[0].(pgx.QueryRewriter); ok {
			var err error
			if sql, args, err = rw.RewriteQuery(ctx, conn, sql, args[1:]); err != nil {
				return "", nil, fmt.Errorf("rewrite query failed: %w", err)
			}
		}
	}
	return sql, args, nil
}

// statementName names sql's prepared statement for the binding's key.
func statementName(key, sql string) string {
	sum := sha256.Sum256([]byte(key + sql))
	return statementPrefix + hex.EncodeToString(sum[:20])
}

// staleStatement reports an error after which a statement's description (or the
// statement prepared on the connection) must not be used again: the server lost it,
// or a table under it changed its result type.
func staleStatement(err error) bool {
	if isRetryable(err) && sqlState(err) == "0A000" {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "26000"
}
