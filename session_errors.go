package tenant

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsConflict reports whether err means the work lost a race with other transactions
// and may succeed if run again: ErrConflict (retries ran out), or the PostgreSQL
// errors the lifecycle retries (serialization failure 40001, deadlock 40P01, "cached
// plan must not change result type").
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) || isRetryable(err) }

// isRetryable: serialization failure, deadlock, or "cached plan must not change result
// type" (a migration changed a table under a prepared statement). Running the work
// again in a fresh transaction succeeds for all three.
func isRetryable(err error) bool {
	switch sqlState(err) {
	case "40001", "40P01":
		return true
	case "0A000":
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Message == "cached plan must not change result type"
	}
	return false
}

// isLostStatement reports pgx's cached statement missing on the server (26000), or
// prepared twice (42P05): what PgBouncer without prepared statement support causes.
func isLostStatement(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "26000" || pgErr.Code == "42P05") &&
		(strings.Contains(pgErr.Message, "stmtcache_") || strings.Contains(pgErr.Message, statementPrefix))
}

// isUndefined reports a missing relation or schema: the version marker after a
// migration renamed it, or the tenant's schema after a drop.
func isUndefined(pgErr *pgconn.PgError) bool { return pgErr.Code == "42P01" || pgErr.Code == "3F000" }

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
