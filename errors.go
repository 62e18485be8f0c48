package tenant

import "errors"

// Lifecycle errors: what Middleware hands its ErrorHandler and what Run returns, for
// errors.Is. Each maps to one HTTP answer (WriteError); the detail (which tenant, which
// SQL error) goes to the log, never to the client.
var (
	// ErrUnknownTenant: no tenant in the request, an invalid name, a schema that does
	// not exist, or one the admission policy refused. 404 "unknown tenant" for all of
	// them, so clients cannot probe which.
	ErrUnknownTenant = errors.New("unknown tenant")
	// ErrUnavailable: the database could not be reached, the pool timed out,
	// provisioning failed, or the connection kept dying until the retry budget was
	// spent. 503 with Retry-After.
	ErrUnavailable = errors.New("service unavailable")
	// ErrConflict: the transaction kept failing to serialize (or deadlocking) until
	// the retry budget was spent. 409; IsConflict reports it.
	ErrConflict = errors.New("conflict, please retry")
	// ErrCommitFailed: the handler succeeded but COMMIT did not, so its response was
	// dropped. 500.
	ErrCommitFailed = errors.New("commit failed")
	// ErrCommitUnknown: the connection failed while COMMIT ran and whether it
	// committed cannot be learned, so the response was dropped and the request is not
	// run again. 500 "commit outcome unknown": a client should look before it sends
	// the request again.
	ErrCommitUnknown = errors.New("commit outcome unknown")
)

// ErrTransactionLost means the handler ended the request's transaction or unbound it
// from the tenant itself (ROLLBACK, COMMIT, COMMIT AND CHAIN, a script with its own
// BEGIN and COMMIT, RESET ALL or a change of search_path). Nothing more runs in it,
// nothing is reported as committed, and the request fails with 500.
var ErrTransactionLost = errors.New("tenant: the request's transaction was ended or unbound by the handler")

// ErrPreparedStatements means prepared statements did not survive from one transaction
// to the next on a connection: PgBouncer in transaction mode before 1.21, or without
// max_prepared_statements. It is a configuration error (500, never retried): build the
// pool with pool.WithQueryExecMode(pgx.QueryExecModeExec), or enable
// max_prepared_statements in PgBouncer 1.21 or later.
var ErrPreparedStatements = errors.New("tenant: prepared statements are lost between transactions " +
	"(PgBouncer in transaction mode without prepared statement support): use pool.WithQueryExecMode(pgx.QueryExecModeExec) " +
	"or PgBouncer 1.21+ with max_prepared_statements")

// ErrTransactionBegun is returned by SetIsolation and SetReadOnly once the request's
// transaction has begun (its first query ran): call them before it.
var ErrTransactionBegun = errors.New("tenant: the request's transaction has already begun")
