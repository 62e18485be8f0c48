package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/tenantctx"
)

// newManager makes the library's Manager on dsn: tenants from the X-Tenant header,
// existing tenants only, request transactions at iso.
func newManager(ctx context.Context, dsn string, iso pgx.TxIsoLevel) (*tenant.Manager, error) {
	return tenant.New(ctx, tenant.Config{
		DSN:       dsn,
		Resolver:  middleware.Header(tenantHeader),
		Isolation: iso,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

// withLibrary routes GET /documents/{id} through tenant.Middleware to a minimal handler:
// one QueryRow on the request's session.
func withLibrary(r chi.Router, mgr *tenant.Manager) {
	r.Use(tenant.Middleware(mgr))
	r.Get("/documents/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := documentID(r)
		if !ok {
			http.NotFound(w, r)
			return
		}
		var title []byte
		err := tenantctx.Session(r.Context()).QueryRow(r.Context(), selectTitle, id).Scan(&title)
		writeTitle(w, title, err)
	})
}
