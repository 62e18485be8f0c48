package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/tenantctx"
)

// errNotInLifecycle is returned by SetIsolation and SetReadOnly outside tenant.Middleware
// and Manager.Run.
var errNotInLifecycle = errors.New("tenant: no request transaction in this context (is it inside tenant.Middleware or Manager.Run?)")

// SetIsolation runs the transaction of the request (or of Run) that ctx belongs to at
// level instead of Config.Isolation: READ COMMITTED for a route whose atomic
// UPDATE ... RETURNING needs no retries, say. Call it before the first query.
func SetIsolation(ctx context.Context, level pgx.TxIsoLevel) error {
	iso, err := isolationSQL(level)
	if err != nil {
		return err
	}
	return setMode(ctx, iso, false)
}

// SetReadOnly makes the transaction of the request (or of Run) that ctx belongs to
// READ ONLY (and DEFERRABLE when SERIALIZABLE: it cannot fail to serialize), and lets
// its response stream while the transaction is open: an export written while its rows
// are read, server-sent events that query as they go. A transaction that may write
// never sends a 2xx before its COMMIT; one that cannot write has nothing to lose. Call
// it before the first query.
func SetReadOnly(ctx context.Context) error { return setMode(ctx, "", true) }

func setMode(ctx context.Context, isolation string, readOnly bool) error {
	s, ok := tenantctx.Session(ctx).(*session)
	if !ok {
		return errNotInLifecycle
	}
	return s.setMode(isolation, readOnly)
}

// Isolation returns middleware that runs each request's transaction at level (see
// SetIsolation): put it inside tenant.Middleware, on the routes that need it, e.g.
// r.With(tenant.Isolation(pgx.ReadCommitted)).Post("/counter", h). It panics on an
// unknown level, and at a request outside tenant.Middleware.
func Isolation(level pgx.TxIsoLevel) func(http.Handler) http.Handler {
	iso, err := isolationSQL(level)
	if err != nil {
		panic(err)
	}
	return modeMiddleware(iso, false)
}

// ReadOnly returns middleware that makes each request's transaction read-only and lets
// its response stream (see SetReadOnly): put it inside tenant.Middleware, on export
// and event-stream routes. It panics at a request outside tenant.Middleware.
func ReadOnly() func(http.Handler) http.Handler { return modeMiddleware("", true) }

func modeMiddleware(isolation string, readOnly bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := setMode(r.Context(), isolation, readOnly); err != nil {
				panic(fmt.Sprintf("%v: put tenant.Isolation and tenant.ReadOnly inside tenant.Middleware, before any query", err))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// isolationSQL returns level as SQL, or an error for an unknown one.
func isolationSQL(level pgx.TxIsoLevel) (string, error) {
	switch level {
	case pgx.Serializable, pgx.RepeatableRead, pgx.ReadCommitted, pgx.ReadUncommitted:
		return strings.ToUpper(string(level)), nil
	}
	return "", fmt.Errorf("tenant: unknown isolation level %q", level)
}
