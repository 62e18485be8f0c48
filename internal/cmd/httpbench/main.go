// Command httpbench compares, over HTTP, a request through tenant.Middleware with what
// an application would write without it, each server in a process of its own:
//
//   - handwritten: chi + pgx, BEGIN ISOLATION LEVEL ...; SET LOCAL search_path in one
//     round trip, the SELECT, COMMIT (the baseline)
//   - autocommit: one schema-qualified SELECT, no transaction (the floor)
//   - nodb: the same chi route with a constant body (the ceiling)
//   - library: tenant.Middleware and tenantctx.Session(ctx).QueryRow
//   - example: the example app, GET /documents/{id} with the tenant in the subdomain
//
// It builds the servers (internal/cmd/benchserver and example-app) into a temporary
// directory, provisions the tenants in a database of its own (tenant_bench, made when
// missing) with the example app's migrations, and starts the servers as child
// processes on loopback ports, the same pool size and isolation level for all. The
// load comes from this process: concurrent keep-alive clients, each request a random
// document of a random tenant, the servers taking turns in each round. It prints
// progress to stderr and a markdown table to stdout: per server the median throughput
// across rounds and its ratio to the baseline (the median of the per-round ratios),
// and p50 and p99 latency. With -delay, a proxy (in a process of its own) delays each
// direction between the servers and PostgreSQL, so that latency follows the number of
// round trips; the table then compares p50 latency.
//
//	go run ./internal/cmd/httpbench                       # what make bench-http runs first
//	go run ./internal/cmd/httpbench -delay 1ms -clients 8 # latency with a network between
//
// DATABASE_URL names the PostgreSQL server (else 127.0.0.1:5432, user postgres). Every
// child process is stopped when the run ends, fails or is interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(mainExit(ctx, os.Args[1:]))
}

// mainExit runs the command and returns its exit code.
func mainExit(ctx context.Context, args []string) int {
	cfg, err := parseFlags(args, os.Getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2 // the flag package printed it
	case err != nil:
		fmt.Fprintf(os.Stderr, "httpbench: %v\n", err)
		return 2
	}
	res, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "httpbench: %v\n", err)
		return 1
	}
	writeReport(os.Stdout, cfg, res)
	return 0
}
