package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tenantkit/tenant/example-app/app"
	"github.com/tenantkit/tenant/schema"
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

// tenants runs "tenants create|list|drop|adopt|suspend|resume".
func tenants(ctx context.Context, env environment, args []string) error {
	if len(args) == 0 {
		return errors.New("tenants: want create, list, drop, adopt, suspend or resume")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "create", "drop", "adopt", "suspend", "resume":
		if sub == "adopt" && len(args) == 0 {
			break // every schema an earlier release made
		}
		if len(args) == 0 {
			return fmt.Errorf("tenants %s: name at least one tenant", sub)
		}
		// Every name is checked before anything happens: one bad name, nothing done.
		var bad []error
		for _, name := range args {
			if err := schema.Validate(name); err != nil {
				bad = append(bad, err)
			}
		}
		if len(bad) > 0 {
			return errors.Join(bad...)
		}
	case "list":
	default:
		return fmt.Errorf("tenants: unknown command %q (want create, list, drop, adopt, suspend or resume)", sub)
	}

	db, err := open(ctx, env, false, false)
	if err != nil {
		return err
	}
	defer db.stop()
	a := db.app
	p := a.Manager().Provisioner()
	switch sub {
	case "adopt":
		return adopt(ctx, env, p, args)
	case "create", "drop", "suspend", "resume":
		// Each name on its own: one that exists (create) or is missing (drop) is
		// reported, and the others still get done.
		do, done := p.Create, "created"
		switch sub {
		case "drop":
			do, done = a.Manager().Drop, "dropped"
		case "suspend":
			do, done = a.Manager().Suspend, "suspended"
		case "resume":
			do, done = a.Manager().Resume, "resumed"
		}
		var failed []error
		for _, name := range args {
			if err := do(ctx, name); err != nil {
				failed = append(failed, err)
				continue
			}
			fmt.Fprintf(env.stdout, "%s %s\n", done, name)
		}
		if len(failed) > 0 {
			return errors.Join(failed...)
		}
	case "list":
		fs := flag.NewFlagSet("tenants list", flag.ContinueOnError)
		fs.SetOutput(env.stderr)
		ns := fs.String("namespace", "", "only tenants named NS-*")
		if err := fs.Parse(args); err != nil {
			return err
		}
		names, err := p.List(ctx, *ns)
		if err != nil {
			return err
		}
		for _, n := range names {
			fmt.Fprintln(env.stdout, n)
		}
	}
	return nil
}

// adopt registers tenant schemas made by a release before the tenant registry: the
// names given, or every one Adoptable finds. Each name is handled on its own.
func adopt(ctx context.Context, env environment, p *schema.Provisioner, names []string) error {
	if len(names) == 0 {
		var err error
		if names, err = p.Adoptable(ctx); err != nil {
			return err
		}
		if len(names) == 0 {
			fmt.Fprintln(env.stdout, "nothing to adopt")
			return nil
		}
	}
	var failed []error
	for _, name := range names {
		if err := p.Adopt(ctx, name); err != nil {
			failed = append(failed, err)
			continue
		}
		fmt.Fprintf(env.stdout, "adopted %s\n", name)
	}
	return errors.Join(failed...)
}
