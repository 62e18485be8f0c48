package tenant_test

import (
	"context"
	"net/http"
	"testing/fstest"

	"github.com/go-chi/chi/v5"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/middleware"
)

// Routes without a tenant (health check, static files, login) sit beside the tenant
// routes, outside the middleware; the tenant routes get it inside the route that
// declares {tenant}, where chi has set the parameter.
func Example_routingChi() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{
		DSN:        testdb.DatabaseURL(),
		Resolver:   middleware.URLParam("tenant"),
		Migrations: exampleMigrations,
	})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_route_chi"); err != nil {
		panic(err)
	}
	defer mgr.Drop(ctx, "ex_route_chi")

	r := chi.NewRouter()
	r.Get("/healthz", healthz)
	r.Handle("/static/*", http.StripPrefix("/static/", http.FileServerFS(staticFiles)))
	r.Post("/login", login)
	r.Route("/t/{tenant}", func(r chi.Router) {
		r.Use(tenant.Middleware(mgr)) // inside the route: {tenant} is set here
		r.Post("/notes", addNote)
		r.Get("/notes", listNotes)
	})

	send(r, "GET", "localhost", "/healthz", "")
	send(r, "GET", "localhost", "/static/app.css", "")
	send(r, "POST", "localhost", "/login", "user=ann")
	send(r, "POST", "localhost", "/t/ex_route_chi/notes", "body=hello")
	send(r, "GET", "localhost", "/t/ex_route_chi/notes", "")
	send(r, "GET", "localhost", "/t/nosuch/notes", "")
	// Output:
	// 200 ok
	// 200 body {}
	// 200 welcome ann
	// 201
	// 200 ex_route_chi: hello
	// 404 unknown tenant
}

// The same with net/http's ServeMux: the mux sets {tenant} only on the request it hands
// the matched route's handler, so the middleware wraps each tenant route's handler,
// never the whole mux.
func Example_routingServeMux() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{
		DSN:        testdb.DatabaseURL(),
		Resolver:   middleware.PathValue("tenant"),
		Migrations: exampleMigrations,
	})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_route_mux"); err != nil {
		panic(err)
	}
	defer mgr.Drop(ctx, "ex_route_mux")

	inTenant := tenant.Middleware(mgr)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFiles)))
	mux.HandleFunc("POST /login", login)
	mux.Handle("POST /t/{tenant}/notes", inTenant(http.HandlerFunc(addNote)))
	mux.Handle("GET /t/{tenant}/notes", inTenant(http.HandlerFunc(listNotes)))

	send(mux, "GET", "localhost", "/healthz", "")
	send(mux, "GET", "localhost", "/static/app.css", "")
	send(mux, "POST", "localhost", "/login", "user=ann")
	send(mux, "POST", "localhost", "/t/ex_route_mux/notes", "body=hello")
	send(mux, "GET", "localhost", "/t/ex_route_mux/notes", "")
	send(mux, "GET", "localhost", "/t/nosuch/notes", "")
	// Output:
	// 200 ok
	// 200 body {}
	// 200 welcome ann
	// 201
	// 200 ex_route_mux: hello
	// 404 unknown tenant
}

var staticFiles = fstest.MapFS{"app.css": {Data: []byte("body {}")}}

func healthz(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }

func login(w http.ResponseWriter, r *http.Request) {
	_, _ = w.Write([]byte("welcome " + r.FormValue("user"))) // a real app checks a password
}
