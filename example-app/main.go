// Command example-app is tenant's example: a multi-tenant document store.
//
//	example-app [serve]                       serve HTTP (ADDR, default :8080)
//	example-app tenants create NAME...        provision tenants
//	example-app tenants list [--namespace NS] [--long]  list tenants
//	example-app tenants drop NAME...          drop tenants and their data
//	example-app tenants adopt [NAME...]       register tenants made before the registry
//	example-app tenants suspend|resume NAME...  stop serving tenants (data kept), serve them again
//	example-app migrate [--parallel N] [--canary N] [--namespace NS]
//	                                          bring every tenant to the latest migration
//	example-app sql TENANT 'SQL'              run SQL in one tenant's transaction
//	example-app seed                          provision the demo tenants acme and globex
//	example-app stop                          stop the private PostgreSQL a killed serve left running
//
// tenants, migrate and sql are the library's admin command. DATABASE_URL names the
// database. Without it, the app runs a private PostgreSQL from
// the installed server binaries with its data under DATA_DIR (default .data), and
// serve provisions the demo tenants acme and globex (on DATABASE_URL, seed does). AUTO_CREATE=1 makes serve
// provision a valid unknown tenant on its first request. ISOLATION sets the isolation
// level of request transactions: serializable (the default), repeatable-read or
// read-committed.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run executes one command and returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	env := environment{getenv: getenv, stdout: stdout, stderr: stderr}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, env)
	case "tenants", "migrate", "sql":
		err = adminCommand(ctx, env, append([]string{cmd}, args...))
	case "seed":
		err = seed(ctx, env)
	case "stop":
		err = stopPrivate(ctx, env)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "example-app: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "example-app: %v\n", err)
		return 1
	}
	return 0
}

const usage = `usage:
  example-app [serve]                        serve HTTP on ADDR (default :8080)
  example-app tenants create NAME...         provision tenants
  example-app tenants list [--namespace NS] [--long]  list tenants (--long: state, version, created)
  example-app tenants drop NAME...           drop tenants and all their data
  example-app tenants adopt [NAME...]        register tenants made before the tenant registry (all when none named)
  example-app tenants suspend|resume NAME... stop serving tenants (their data is kept), serve them again
  example-app migrate [--parallel N] [--canary N] [--namespace NS]
                                             bring every tenant to the latest migration, with progress;
                                             Ctrl-C stops it cleanly, and a rerun does what is left
  example-app sql TENANT 'SQL'               run SQL in one tenant's transaction, print the rows
  example-app seed                           provision the demo tenants acme and globex (serve does on the private PostgreSQL)
  example-app stop                           stop the private PostgreSQL under DATA_DIR that a killed serve left running
environment: DATABASE_URL (default: a private PostgreSQL under DATA_DIR=.data), ADDR, AUTO_CREATE=1,
  ISOLATION=serializable|repeatable-read|read-committed (of request transactions; default serializable)
`

type environment struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}
