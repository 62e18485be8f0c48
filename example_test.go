package tenant_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing/fstest"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenanttest"
)

// exampleMigrations is usually an embed.FS of SQL files.
var exampleMigrations = fstest.MapFS{
	"001_notes.sql": {Data: []byte("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")},
}

// addNote and listNotes are ordinary handlers: the session runs in the request's
// tenant schema and transaction.
func addNote(w http.ResponseWriter, r *http.Request) {
	db := tenantctx.Session(r.Context())
	if _, err := db.Exec(r.Context(), "INSERT INTO notes (body) VALUES ($1)", r.FormValue("body")); err != nil {
		http.Error(w, "could not save", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated) // commits before this reaches the client
}

func listNotes(w http.ResponseWriter, r *http.Request) {
	db := tenantctx.Session(r.Context())
	rows, err := db.Query(r.Context(), "SELECT body FROM notes ORDER BY id")
	if err != nil {
		http.Error(w, "could not read", http.StatusInternalServerError)
		return
	}
	defer rows.Close()
	var bodies []string
	for rows.Next() {
		var b string
		_ = rows.Scan(&b)
		bodies = append(bodies, b)
	}
	fmt.Fprintf(w, "%s: %s", tenantctx.Schema(r.Context()), strings.Join(bodies, ", "))
}

// send drives a handler as a client would and prints the answer.
func send(h http.Handler, method, host, target, body string) {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Host = host
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Body.String())))
}

// A chi application whose tenants are subdomains of example.com.
func Example_chi() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{
		DSN:        tenanttest.DatabaseURL(), // the application's DSN
		Resolver:   middleware.Subdomain("example.com"),
		Migrations: exampleMigrations,
	})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	for _, name := range []string{"ex_acme", "ex_globex"} { // usually a tenant-admin command
		if err := mgr.Provisioner().Ensure(ctx, name); err != nil {
			panic(err)
		}
		defer mgr.Drop(ctx, name)
	}

	r := chi.NewRouter()
	r.Use(chimw.Recoverer)
	r.Use(tenant.Middleware(mgr))
	r.Post("/notes", addNote)
	r.Get("/notes", listNotes)

	send(r, "POST", "ex_acme.example.com", "/notes", "body=hello")
	send(r, "GET", "ex_acme.example.com", "/notes", "")
	send(r, "GET", "ex_globex.example.com", "/notes", "")
	send(r, "GET", "nosuch.example.com", "/notes", "")
	// Output:
	// 201
	// 200 ex_acme: hello
	// 200 ex_globex:
	// 404 unknown tenant
}

// A net/http ServeMux application whose tenant is the first path segment after /t:
// the mux below sees /notes.
func Example_serveMux() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{
		DSN:        tenanttest.DatabaseURL(),
		Resolver:   middleware.PathPrefix("/t"),
		Migrations: exampleMigrations,
	})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_initech"); err != nil {
		panic(err)
	}
	defer mgr.Drop(ctx, "ex_initech")

	mux := http.NewServeMux()
	mux.HandleFunc("POST /notes", addNote)
	mux.HandleFunc("GET /notes", listNotes)
	app := tenant.Middleware(mgr)(mux)

	send(app, "POST", "localhost", "/t/ex_initech/notes", "body=tps+report")
	send(app, "GET", "localhost", "/t/ex_initech/notes", "")
	send(app, "GET", "localhost", "/t/Robert%27%29%3B%20DROP%20TABLE%20notes%3B--/notes", "")
	// Output:
	// 201
	// 200 ex_initech: tps report
	// 404 unknown tenant
}

// Jobs and commands get the same lifecycle without HTTP.
func ExampleManager_Run() {
	ctx := context.Background()
	mgr, err := tenant.New(ctx, tenant.Config{DSN: tenanttest.DatabaseURL(), Migrations: exampleMigrations})
	if err != nil {
		panic(err)
	}
	defer mgr.Close()
	if err := mgr.Provisioner().Ensure(ctx, "ex_hooli"); err != nil {
		panic(err)
	}
	defer mgr.Drop(ctx, "ex_hooli")

	err = mgr.Run(ctx, "ex_hooli", func(ctx context.Context) error {
		db := tenantctx.Session(ctx)
		if _, err := db.Exec(ctx, "INSERT INTO notes (body) VALUES ('nightly import')"); err != nil {
			return err // rolled back
		}
		tenantctx.AfterCommit(ctx, func(context.Context) { fmt.Println("committed: notify") })
		return nil // committed
	})
	fmt.Println(err)
	// Output:
	// committed: notify
	// <nil>
}
