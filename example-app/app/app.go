// Package app is the example application: a small multi-tenant document store built on
// tenant. Tenants come from the subdomain of localhost (acme.localhost:8080) or the
// path prefix /t/{tenant} (localhost:8080/t/acme/); both reach the same handlers.
package app

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/schema"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the tenant schema's SQL migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// Locales the app serves; English is the default.
var Locales = []language.Tag{language.English, language.German}

// Config configures the app.
type Config struct {
	DSN        string         // used when Pool is nil
	Pool       *pgxpool.Pool  // owned by the caller
	AutoCreate bool           // provision a valid unknown tenant on its first request
	Isolation  pgx.TxIsoLevel // of request transactions; default SERIALIZABLE
	Logger     *slog.Logger
	// RoleSecrets, when set, runs each tenant's requests as a login role of its own
	// (tenant.Config.Roles), the first secret setting passwords. Default none.
	RoleSecrets [][]byte
}

// App holds the tenant Manager and serves the HTTP contract.
type App struct {
	mgr    *tenant.Manager
	log    *slog.Logger
	recent recent // what Watch saw
}

// New builds the app; it does not connect until the first request.
func New(ctx context.Context, cfg Config) (*App, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	admission := tenant.ExistingOnly()
	if cfg.AutoCreate {
		admission = tenant.AutoCreate(nil)
	}
	var roles *schema.Roles
	if len(cfg.RoleSecrets) > 0 {
		roles = &schema.Roles{Secrets: cfg.RoleSecrets}
	}
	mgr, err := tenant.New(ctx, tenant.Config{
		Roles:      roles,
		DSN:        cfg.DSN,
		Pool:       cfg.Pool,
		Resolver:   resolver(),
		Admission:  admission,
		Migrations: Migrations(),
		Locales:    Locales,
		Isolation:  cfg.Isolation,
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	return &App{mgr: mgr, log: log}, nil
}

// Manager gives the commands (tenants, migrate) the app's tenant Manager.
func (a *App) Manager() *tenant.Manager { return a.mgr }

// Close releases the pool the app made.
func (a *App) Close() { a.mgr.Close() }

// Handler serves /healthz without a tenant and everything else behind the tenant
// middleware. The middleware sits in front of the router, so a /t/{tenant} prefix is
// stripped before chi routes the rest.
func (a *App) Handler() http.Handler {
	r := chi.NewRouter()
	r.Get("/", a.page)
	r.Get("/documents", a.listDocuments)
	r.Post("/documents", a.createDocument)
	r.Get("/documents/{id}", a.getDocument)
	r.Delete("/documents/{id}", a.deleteDocument)
	r.Get("/counter", a.getCounter)
	r.Post("/counter", a.incrementCounter)
	r.Get("/changes", a.listChanges)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("/", chimw.Recoverer(tenant.Middleware(a.mgr)(r)))
	return mux
}

type baseKey struct{}

// resolver finds the tenant in the subdomain of localhost or after /t/, and remembers
// the path prefix so pages link within the tenant whichever way it was reached.
func resolver() middleware.Resolver {
	sub := middleware.Subdomain("localhost")
	prefix := middleware.PathPrefix("/t")
	return func(r *http.Request) (string, *http.Request) {
		if name, next := sub(r); name != "" {
			return name, next
		}
		name, next := prefix(r)
		if name == "" {
			return "", r
		}
		return name, next.WithContext(context.WithValue(next.Context(), baseKey{}, "/t/"+name))
	}
}

// base is the path prefix of the tenant's pages: "" on a subdomain, "/t/acme" otherwise.
func base(r *http.Request) string {
	b, _ := r.Context().Value(baseKey{}).(string)
	return b
}
