package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tenantkit/tenant/schema"
)

// serve runs the HTTP server until ctx ends (Ctrl-C), then shuts down cleanly.
func serve(ctx context.Context, env environment) error {
	a, demo, closeAll, err := open(ctx, env, env.getenv("AUTO_CREATE") == "1")
	if err != nil {
		return err
	}
	defer closeAll()
	if demo {
		if err := a.Seed(ctx); err != nil {
			return fmt.Errorf("demo tenants: %w", err)
		}
	}
	addr := env.getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(env.stdout, "example-app: serving on %s\n", ln.Addr())
	fmt.Fprintf(env.stdout, "  try: http://acme.localhost:%d/\n", port)
	fmt.Fprintf(env.stdout, "       http://localhost:%d/t/globex/\n", port)
	fmt.Fprintf(env.stdout, "       curl http://localhost:%d/t/acme/documents\n", port)
	if demo {
		fmt.Fprintln(env.stdout, "  Ctrl-C stops the app and its PostgreSQL")
	} else {
		fmt.Fprintln(env.stdout, "  Ctrl-C stops the app")
	}

	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
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

	a, _, closeAll, err := open(ctx, env, false)
	if err != nil {
		return err
	}
	defer closeAll()
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
