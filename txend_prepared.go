package tenant

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// In pgx's default mode the end of a transaction goes as statements prepared once per
// connection: the check (the tenant as its parameter), what beforeEndSQL holds, COMMIT
// or ROLLBACK, and what resetSQL holds, one statement each. The end then sends only
// Bind and Execute messages, with one Sync: nothing is parsed or planned per request,
// and as in the script, the first error makes the server skip the rest. Other modes
// (PgBouncer without prepared statements), and ends that are not the standard one (a
// failed transaction, SQL PREPARE to deallocate), send the scripts.

// endStatements are the prepared end's statements, by index; endCommit and
// endRollback the order each end runs them in.
var endStatements, endCommit, endRollback = prepareEnd()

func prepareEnd() (all []string, commit, rollback []int) {
	split := func(script string) []string { return strings.Split(strings.TrimSuffix(script, "; "), "; ") }
	before, reset := split(beforeEndSQL), split(resetSQL)
	all = append(append(append([]string{checkSQL}, before...), "COMMIT", "ROLLBACK"), reset...)
	for i := range all {
		switch {
		case all[i] == "ROLLBACK":
			rollback = append(rollback, i)
		case all[i] == "COMMIT":
			commit = append(commit, i)
		default:
			commit, rollback = append(commit, i), append(rollback, i)
		}
	}
	return all, commit, rollback
}

// endNames name the prepared end's statements.
var endNames = func() []string {
	names := make([]string, len(endStatements))
	for i := range names {
		names[i] = statementPrefix + "end_" + strconv.Itoa(i)
	}
	return names
}()

// paramName names the prepared SET of the connection's i-th start-up parameter that
// PgBouncer keeps (connState.params): the last of the reset.
func paramName(i int) string { return statementPrefix + "end_param_" + strconv.Itoa(i) }

// endReady marks, in connState.ready, a connection whose end statements are prepared.
const endReady = statementPrefix + "end"

// endPrepared sends the end as the connection's prepared statements (parsing them
// first, once per connection) and reads the results as execEach does. With apart, a
// Flush after the check has the server send its answer before COMMIT begins.
func endPrepared(ctx context.Context, pc *pgconn.PgConn, st *connState, tenant []byte, commit, apart bool) ([]*pgconn.Result, error) {
	fe := pc.Frontend()
	if !st.ready[endReady] {
		for i, q := range endStatements {
			fe.SendParse(&pgproto3.Parse{Name: endNames[i], Query: q})
		}
		for i, q := range st.params {
			fe.SendParse(&pgproto3.Parse{Name: paramName(i), Query: q})
		}
	}
	order := endRollback
	if commit {
		order = endCommit
	}
	for k, i := range order {
		st.bind = pgproto3.Bind{PreparedStatement: endNames[i]}
		if k == 0 {
			st.checkArgs[0] = tenant
			st.bind.Parameters = st.checkArgs[:]
		}
		fe.SendBind(&st.bind)
		fe.SendExecute(&st.execute)
		if k == 0 && apart {
			fe.Send(&pgproto3.Flush{})
		}
	}
	for i := range st.params {
		st.bind = pgproto3.Bind{PreparedStatement: paramName(i)}
		fe.SendBind(&st.bind)
		fe.SendExecute(&st.execute)
	}
	fe.SendSync(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		_ = pc.Conn().Close() // it may have sent part of a message: unusable
		return nil, err
	}
	results, parsed, err := readResults(ctx, pc, &st.results, 1)
	if parsed > 0 && parsed == len(endStatements)+len(st.params) {
		st.ready[endReady] = true
	}
	return results, err
}

// lostEndStatement reports that the server no longer has the prepared end (a
// DEALLOCATE ALL run inside a server-side function).
func lostEndStatement(err error) bool {
	return sqlState(err) == "26000" && strings.Contains(err.Error(), statementPrefix+"end_")
}
