package tenantsql

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tenantkit/tenant/internal/scope"
	"github.com/tenantkit/tenant/tenantctx"
)

// conn is a database/sql connection that has no connection: every call goes to the
// session of its context, or to the savepoint of the database/sql transaction open on
// it (database/sql keeps a conn to one transaction until it ends).
type conn struct {
	// mu guards the open transaction: a statement of the same request on another conn
	// may end it (outside), while database/sql ends it from a goroutine of its own
	// when BeginTx's context is cancelled.
	mu        sync.Mutex
	tx        pgx.Tx          // the open transaction's savepoint
	txCtx     context.Context // BeginTx's, for Commit and Rollback, which take none
	txSession tenantctx.DB    // the session the transaction is a savepoint of
	txScope   *scope.Scope
	types     *pgtype.Map
}

// querier is what a statement runs on: the session, or a savepoint.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// on is what a statement with ctx runs on: the open transaction's savepoint, when ctx
// is of the request that opened it; the session of ctx otherwise (see outside).
func (c *conn) on(ctx context.Context) (querier, error) {
	c.mu.Lock()
	tx, session := c.tx, c.txSession
	c.mu.Unlock()
	if tx == nil {
		if err := outside(ctx, c); err != nil {
			return nil, err
		}
		return tenantctx.Session(ctx), nil
	}
	if tenantctx.Session(ctx) != session {
		return nil, ErrOtherRequest
	}
	return tx, nil
}

// outside lets a statement run on the request's session, outside any database/sql
// transaction (c's own has ended), unless one of the request's is open on another
// conn: the statement would run inside that transaction's savepoint, and its rollback
// would undo the statement (ErrTxOpen). A transaction whose BeginTx context is done
// is rolled back first, as database/sql will do, but from a goroutine of its own: its
// ROLLBACK TO could otherwise come after the statement and undo it.
func outside(ctx context.Context, c *conn) error {
	sc := scope.FromContext(ctx)
	if sc == nil {
		return nil
	}
	owner, _ := sc.SQLTx().(*conn)
	if owner == nil || owner == c {
		return nil
	}
	owner.mu.Lock()
	open, cancelled := owner.tx != nil, owner.txCtx != nil && owner.txCtx.Err() != nil
	owner.mu.Unlock()
	switch {
	case !open: // ending at this moment
		return nil
	case cancelled:
		if err := (savepoint{owner}).Rollback(); err != nil && !errors.Is(err, errEnded) {
			return err
		}
		return nil
	}
	return ErrTxOpen
}

var (
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

func (c *conn) ExecContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Result, error) {
	args, err := values(named, 0)
	if err != nil {
		return nil, err
	}
	q, err := c.on(ctx)
	if err != nil {
		return nil, err
	}
	tag, err := q.Exec(ctx, query, args...)
	if err != nil {
		return nil, wrapped(err)
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (c *conn) QueryContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Rows, error) {
	args, err := values(named, 1)
	if err != nil {
		return nil, err
	}
	args[0] = resultFormats
	q, err := c.on(ctx)
	if err != nil {
		return nil, err
	}
	pgRows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, wrapped(err)
	}
	if c.types == nil {
		c.types = typeMaps.Get().(*pgtype.Map)
	}
	return newRows(pgRows, c.types)
}

// CheckNamedValue takes every argument as it is: pgx encodes it (driver.Valuer
// included), not database/sql's few types.
func (c *conn) CheckNamedValue(*driver.NamedValue) error { return nil }

// values are the statement's arguments after room for skip options.
func values(named []driver.NamedValue, skip int) ([]any, error) {
	args := make([]any, skip+len(named))
	for i, nv := range named {
		if nv.Name != "" {
			return nil, errors.New("tenantsql: PostgreSQL has no named parameters (sql.Named): use $1, $2, …")
		}
		args[skip+i] = nv.Value
	}
	return args, nil
}

// PrepareContext prepares nothing on the server: the statement runs by its text on
// each call's session, where it is prepared once per tenant and connection.
func (c *conn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return &stmt{conn: c, query: query}, nil
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if opts.Isolation != 0 || opts.ReadOnly {
		return nil, ErrTxOptions
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tx != nil { // database/sql never does this
		return nil, errors.New("tenantsql: a transaction is already open on this connection")
	}
	sc := scope.FromContext(ctx)
	if sc != nil && !sc.BeginSQLTx(c) {
		return nil, ErrTxOpen
	}
	session := tenantctx.Session(ctx)
	tx, err := session.Begin(ctx)
	if err != nil {
		if sc != nil {
			sc.EndSQLTx()
		}
		return nil, wrapped(err)
	}
	c.tx, c.txCtx, c.txSession, c.txScope = tx, ctx, session, sc
	return savepoint{c}, nil
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// Close gives back the type map; there is no connection to close.
func (c *conn) Close() error {
	if c.types != nil {
		typeMaps.Put(c.types)
		c.types = nil
	}
	return nil
}

// savepoint is a database/sql transaction: a savepoint of the request's transaction.
type savepoint struct{ c *conn }

func (s savepoint) Commit() error   { return s.end(pgx.Tx.Commit) }
func (s savepoint) Rollback() error { return s.end(pgx.Tx.Rollback) }

// errEnded is a savepoint's end after its transaction ended: by database/sql, or
// rolled back by a statement outside it (outside).
var errEnded = errors.New("tenantsql: the transaction has already ended")

// end ends the transaction, holding the conn until the savepoint's RELEASE or
// ROLLBACK TO is queued: a statement outside it, waiting on the lock, comes after.
func (s savepoint) end(how func(pgx.Tx, context.Context) error) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	tx, ctx, sc := s.c.tx, s.c.txCtx, s.c.txScope
	s.c.tx, s.c.txCtx, s.c.txSession, s.c.txScope = nil, nil, nil, nil
	if tx == nil {
		return errEnded
	}
	if sc != nil {
		defer sc.EndSQLTx()
	}
	return how(tx, ctx)
}

// stmt is a prepared statement: its text, run on each call's session.
type stmt struct {
	conn  *conn
	query string
}

var (
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

func (s *stmt) Close() error  { return nil }
func (s *stmt) NumInput() int { return -1 }

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.conn.ExecContext(ctx, s.query, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.conn.QueryContext(ctx, s.query, args)
}

// Exec and Query are database/sql's calls without a context: no tenant session.
func (s *stmt) Exec([]driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), nil)
}

func (s *stmt) Query([]driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), nil)
}
