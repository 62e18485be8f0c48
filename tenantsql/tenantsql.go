// Package tenantsql lets database/sql clients (plain database/sql, sqlx, bun, gorm,
// ent) run in the request's tenant session: the same schema, the same transaction,
// committed before the response, run again on a conflict, rolled back with the rest.
//
//	db := tenantsql.Open() // once per process; it holds no connection of its own
//	...
//	func handler(w http.ResponseWriter, r *http.Request) {
//		db.QueryRowContext(r.Context(), "SELECT title FROM documents WHERE id = $1", id)
//	}
//
// Each call goes to tenantctx.Session of the context it is given, so only the Context
// methods (QueryContext, ExecContext, BeginTx, …) reach a tenant: a call without the
// request's context fails with an error matching tenantctx.ErrNoSession, and never
// runs outside the tenant. A database/sql transaction (BeginTx, what ORMs open around
// their writes) is a savepoint of the request's transaction: its Commit releases the
// savepoint (the request still commits or rolls back as a whole) and its Rollback
// undoes only what it did.
//
// Arguments are encoded by pgx, with its whole type support (driver.Valuer, arrays,
// pgtype types, types registered on the pool's connections). Results come as
// pgx/v5/stdlib gives them: integers as int64, floats as float64, timestamps and dates
// as time.Time, bytea, json and jsonb as []byte, everything else as its text.
package tenantsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tenantkit/tenant/tenantctx"
)

// ErrTxOptions is returned by BeginTx with an isolation level or read-only mode: a
// transaction in a request is a savepoint of the request's transaction, which has its
// level and mode already (set them for the request: tenant.Isolation, tenant.ReadOnly).
var ErrTxOptions = errors.New("tenantsql: a transaction inside a request is a savepoint of the request's transaction and takes its isolation level and access mode")

// ErrTxOpen is returned by BeginTx while another database/sql transaction of the same
// request is open: the second would be a savepoint inside the first, whose rollback
// would undo what the second committed. End the first, or nest on purpose with
// SAVEPOINT statements in it. It is returned, too, by a statement of the request run
// outside its open transaction (on the *sql.DB rather than the *sql.Tx): it would run
// inside the transaction's savepoint and be undone by its rollback. Once BeginTx's
// context is cancelled, the next statement outside rolls the transaction back first.
var ErrTxOpen = errors.New("tenantsql: another database/sql transaction of this request is open")

// ErrOtherRequest is returned by a transaction's statement whose context is not the
// request's that began the transaction (another request's, or none): a transaction
// belongs to its request.
var ErrOtherRequest = errors.New("tenantsql: the transaction belongs to another request (or its context has no tenant session)")

// Open returns a *sql.DB whose every call runs in the tenant session of the context it
// is given. It opens no connection: make one per process and share it. Close is
// harmless, and Ping succeeds without a request (there is nothing to reach until one).
func Open() *sql.DB { return sql.OpenDB(Connector()) }

// Connector returns the driver.Connector that Open uses, for clients that take one.
func Connector() driver.Connector { return connector{} }

// connector makes conns: they hold nothing but a type map, so making one is cheap and
// any of them serves any request.
type connector struct{}

func (connector) Connect(context.Context) (driver.Conn, error) { return &conn{}, nil }

func (connector) Driver() driver.Driver { return sessionDriver{} }

// sessionDriver is the connector's driver.Driver, for database/sql's Driver method. It
// has no name to open by: Open (or Connector) is the only way in.
type sessionDriver struct{}

func (sessionDriver) Open(string) (driver.Conn, error) { return &conn{}, nil }

// typeMaps lends conns the pgtype.Map that converts results (a Map is not safe for
// concurrent use, and is costly enough to keep).
var typeMaps = sync.Pool{New: func() any { return pgtype.NewMap() }}

// wrapped adds, to an error saying there is no tenant session, how to give one.
func wrapped(err error) error {
	if errors.Is(err, tenantctx.ErrNoSession) {
		return fmt.Errorf("%w: pass the request's context to a Context method (QueryContext, ExecContext, BeginTx)", err)
	}
	return err
}
