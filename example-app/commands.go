package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/admin"
	"github.com/tenantkit/tenant/example-app/app"
)

// serve runs the HTTP server until ctx ends (Ctrl-C), then shuts down cleanly. It
// takes the port first, so a busy one fails at once, before a database is started.
func serve(ctx context.Context, env environment) error {
	ln, err := listen(env.getenv("ADDR"))
	if err != nil {
		return err
	}
	defer ln.Close()
	db, err := open(ctx, env, env.getenv("AUTO_CREATE") == "1", true)
	if err != nil {
		return err
	}
	defer db.stop()
	if db.demo {
		if err := db.app.Seed(ctx); err != nil {
			return fmt.Errorf("demo tenants: %w", err)
		}
	}
	if err := db.app.Watch(ctx); err != nil {
		return fmt.Errorf("change signals: %w", err)
	}
	if err := banner(ctx, env, db, ln.Addr().(*net.TCPAddr)); err != nil {
		return err
	}

	srv := &http.Server{Handler: db.app.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	slog.Info("example-app: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// listen takes ADDR (default :8080). A port in use says how to pick another: the
// usual cause is an earlier serve still running, or another local server.
func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = ":8080"
	}
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%w: another program (an earlier serve?) listens there; pick another address with ADDR, e.g. ADDR=:8081 make run", err)
	}
	return ln, err
}

// banner says where to look: URLs of a tenant that exists (the demo's acme when there),
// how to make the demo tenants when they are missing (on DATABASE_URL serve seeds
// nothing: the database is not the app's to fill), and what Ctrl-C stops.
func banner(ctx context.Context, env environment, db *database, addr *net.TCPAddr) error {
	names, err := db.app.Manager().Provisioner().List(ctx, "")
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	out := env.stdout
	fmt.Fprintf(out, "example-app: serving on %s\n", addr)
	first, second := "", ""
	if slices.Contains(names, "acme") {
		first, second = "acme", "acme"
		if slices.Contains(names, "globex") {
			second = "globex"
		}
	} else if len(names) > 0 {
		first, second = names[0], names[0]
	}
	if first != "" {
		fmt.Fprintf(out, "  try: http://%s.localhost:%d/\n", first, addr.Port)
		fmt.Fprintf(out, "       http://localhost:%d/t/%s/\n", addr.Port, second)
		fmt.Fprintf(out, "       curl http://localhost:%d/t/%s/documents\n", addr.Port, first)
	}
	if first != "acme" {
		what := "the demo tenants acme and globex are not in this database"
		if first == "" {
			what = "no tenants in this database yet"
		}
		fmt.Fprintf(out, "  %s: example-app seed makes the demo tenants (with a few documents),\n", what)
		fmt.Fprintln(out, "  example-app tenants create NAME an empty one (AUTO_CREATE=1: any valid name, on its first request)")
	}
	fmt.Fprintf(out, "  %s\n", db.note)
	return nil
}

// seed provisions the demo tenants on any database, as serve does on the private one.
func seed(ctx context.Context, env environment) error {
	db, err := open(ctx, env, false, false)
	if err != nil {
		return err
	}
	defer db.stop()
	if err := db.app.Seed(ctx); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	fmt.Fprintf(env.stdout, "demo tenants ready: %s\n", strings.Join(app.DemoTenants, ", "))
	return nil
}

// admin runs the tenant administration commands (tenants, migrate, sql) with the
// library's admin package, on the app's Manager: a bar for migrate on a terminal.
func adminCommand(ctx context.Context, env environment, args []string) error {
	return admin.Command{
		Open: func(ctx context.Context) (*tenant.Manager, func(), error) {
			db, err := open(ctx, env, false, false)
			if err != nil {
				return nil, nil, err
			}
			return db.app.Manager(), db.stop, nil
		},
		Stdout: env.stdout, Stderr: env.stderr, Progress: newProgress,
	}.Run(ctx, args)
}
