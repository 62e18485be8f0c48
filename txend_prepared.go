package tenant

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// In pgx's default mode the end of a transaction goes as prepared statements: the
// check (the tenant as its parameter), what beforeEndSQL holds, COMMIT or ROLLBACK, and
// what resetSQL holds, one statement each. The end then sends only Bind and Execute
// messages, with one Sync: nothing is parsed or planned per request, and as in the
// script, the first error makes the server skip the rest. Other modes (PgBouncer
// without prepared statements), and ends that are not the standard one (a failed
// transaction, SQL PREPARE to deallocate), send the scripts.
//
// The check is prepared per tenant (binding.checkName), among the connection's
// statements: it runs under the tenant's search_path, and PostgreSQL plans a prepared
// statement again whenever the search_path differs from its last run's, so one check
// shared by the tenants was planned at every change of tenant. The rest are prepared
// once per connection: they run before the search_path is set or after COMMIT.

// endStatements are the prepared end's statements after the check, by index;
// endCommit and endRollback the order each end runs them in.
var endStatements, endCommit, endRollback = prepareEnd()

func prepareEnd() (all []string, commit, rollback []int) {
	split := func(script string) []string { return strings.Split(strings.TrimSuffix(script, "; "), "; ") }
	before, reset := split(beforeEndSQL), split(resetSQL)
	all = append(append(before, "COMMIT", "ROLLBACK"), reset...)
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

// checkName names the prepared check of the tenant's transactions for the binding's
// key: "end_" in it, so that lostEndStatement knows it.
func checkName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return statementPrefix + "end_check_" + hex.EncodeToString(sum[:20])
}

// endPrepared sends the end as prepared statements (parsing the binding's check on
// the connection's first transaction of the binding, and the rest once per
// connection) and reads the results as execEach does. With apart, a Flush after the
// check has the server send its answer before COMMIT begins.
func endPrepared(ctx context.Context, pc *pgconn.PgConn, st *connState, b *binding, commit, apart bool) ([]*pgconn.Result, error) {
	fe := pc.Frontend()
	// Statements evicted since the last round trip are closed first: the check may be
	// one of them, to be parsed again below. (Closing a name the server does not have
	// is no error.)
	for _, name := range st.closing {
		fe.SendClose(&pgproto3.Close{ObjectType: 'S', Name: name})
	}
	st.closing = st.closing[:0]
	parse := 0 // the statements parsed in this round trip
	checkKnown := st.has(b.checkName)
	if !checkKnown {
		fe.SendParse(&pgproto3.Parse{Name: b.checkName, Query: checkSQL})
		parse++
	}
	ready := st.ready[endReady]
	if !ready {
		parse += len(endStatements) + len(st.params)
		for i, q := range endStatements {
			fe.SendParse(&pgproto3.Parse{Name: endNames[i], Query: q})
		}
		for i, q := range st.params {
			fe.SendParse(&pgproto3.Parse{Name: paramName(i), Query: q})
		}
	}
	st.checkArgs[0] = b.checkArg
	st.bind = pgproto3.Bind{PreparedStatement: b.checkName, Parameters: st.checkArgs[:]}
	fe.SendBind(&st.bind)
	fe.SendExecute(&st.execute)
	if apart {
		fe.Send(&pgproto3.Flush{})
	}
	order := endRollback
	if commit {
		order = endCommit
	}
	for _, i := range order {
		st.bind = pgproto3.Bind{PreparedStatement: endNames[i]}
		fe.SendBind(&st.bind)
		fe.SendExecute(&st.execute)
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
	if !checkKnown && parsed > 0 { // the check's Parse went first
		st.add(b.checkName)
	}
	if !ready && parsed == parse {
		st.ready[endReady] = true
	}
	return results, err
}

// lostEndStatement reports that the server no longer has the prepared end (a
// DEALLOCATE ALL run inside a server-side function).
func lostEndStatement(err error) bool {
	return sqlState(err) == "26000" && strings.Contains(err.Error(), statementPrefix+"end_")
}
