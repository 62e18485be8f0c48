package tenant

import (
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// beforeEndSQL and resetSQL remove what a request may leave on its connection besides
// the transaction, before anyone else uses it. They run in the round trip that ends
// the transaction.
//
// beforeEndSQL runs before COMMIT (or ROLLBACK): state that does not roll back and
// means nothing once the request is done (sequence state: lastval). Behind PgBouncer,
// only what runs before the end is sure to reach this server connection: if COMMIT
// fails, the rest of the message is skipped and the reset sent after may land on
// another. (What a failed transaction created rolls back with it, except session
// advisory locks, which resetSQL releases after COMMIT: before it, a lock a handler
// holds as a mutex would be free while its writes are not yet visible. PgBouncer does
// not support session advisory locks in transaction mode.)
const beforeEndSQL = "DISCARD SEQUENCES; "

// resetSQL runs after COMMIT: WITH HOLD cursors, a session-level SET (role and
// session authorization included), temporary tables, LISTEN and session advisory
// locks. RESET restores what the connection started with, so session defaults belong
// in the DSN or in ALTER ROLE ... SET, not in a SET run after connecting. Prepared
// statements made with SQL PREPARE are left: listing them costs more than a request,
// so only a request that sent PREPARE gets deallocateSQL too, before the end (see
// leavesSessionState).
const resetSQL = "CLOSE ALL; RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; DISCARD TEMP; " +
	"UNLISTEN *; SELECT pg_advisory_unlock_all()"

// deallocateSQL drops the statements made with SQL PREPARE; pgx's (and PgBouncer's)
// are protocol-level and stay. Closing the connection alone would not do: behind
// PgBouncer the server connection lives on, for another client.
const deallocateSQL = "DO $$DECLARE n text; BEGIN FOR n IN SELECT name FROM pg_catalog.pg_prepared_statements WHERE from_sql " +
	"LOOP EXECUTE format('DEALLOCATE %I', n); END LOOP; END$$; "

// pgbouncerParams are the parameters PgBouncer keeps for each client and sets on
// whichever server connection serves it. It also copies their new values from the
// server's reports into the client's, so RESET ALL there (which restores the server
// connection's start-up values, not this client's) would make it forget the client's
// own. Setting them again right after restores the client's.
var pgbouncerParams = []string{"application_name", "client_encoding", "datestyle", "intervalstyle",
	"standard_conforming_strings", "timezone"}

// resetFor returns the reset for conn: resetSQL, then SET for each start-up parameter
// PgBouncer keeps (none for most connections). It is built once per connection. Only
// those parameters: setting another (search_path) behind PgBouncer would reach its
// next client.
func resetFor(conn *pgx.Conn) string {
	st := stateOf(conn)
	if st.reset != "" {
		return st.reset
	}
	params := conn.Config().RuntimeParams
	keys := make([]string, 0, len(params))
	for k := range params {
		if slices.Contains(pgbouncerParams, strings.ToLower(k)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	st.params = nil
	for _, k := range keys {
		st.params = append(st.params, "SET "+pgx.Identifier{strings.ToLower(k)}.Sanitize()+" TO "+quoteLiteral(params[k]))
	}
	st.reset = strings.Join(append([]string{resetSQL}, st.params...), "; ")
	return st.reset
}
