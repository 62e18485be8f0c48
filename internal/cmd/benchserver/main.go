// Command benchserver is what the HTTP benchmark (internal/cmd/httpbench) starts, each
// in a process of its own: one of the servers it compares, or the proxy that delays
// the traffic between them and PostgreSQL.
//
//	benchserver -mode handwritten|autocommit|nodb|library [-addr 127.0.0.1:0] [-isolation serializable]
//	benchserver -mode delay-proxy -upstream 127.0.0.1:5432 -delay 1ms [-addr 127.0.0.1:0]
//
// The servers answer GET /documents/{id} for the tenant named by the X-Tenant header
// with the document's title, read by one SELECT by primary key, and GET /healthz. They
// read the database from DATABASE_URL (its pool_max_conns sets the pool size). Once
// listening, each prints "benchserver: listening on ADDR"; SIGINT or SIGTERM stops it.
// With BENCHSERVER_CPUPROFILE set, it writes a CPU profile there when it stops.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchserver: %v\n", err)
		os.Exit(1)
	}
}

// run parses the flags and runs the mode until ctx ends.
func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("benchserver", flag.ContinueOnError)
	mode := fs.String("mode", "", "handwritten, autocommit, nodb, library or delay-proxy")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	isolation := fs.String("isolation", "serializable", "isolation level of the transactions: read-committed, repeatable-read or serializable")
	upstream := fs.String("upstream", "", "delay-proxy: the address to forward to (host:port, or a Unix socket path)")
	delay := fs.Duration("delay", time.Millisecond, "delay-proxy: delay of each direction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if path := os.Getenv("BENCHSERVER_CPUPROFILE"); path != "" { // to see where a server's time goes
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *mode == "delay-proxy" {
		return serveProxy(ctx, *addr, *upstream, *delay)
	}
	iso, err := parseIsolation(*isolation)
	if err != nil {
		return err
	}
	h, closeAll, err := handler(ctx, *mode, os.Getenv("DATABASE_URL"), iso)
	if err != nil {
		return err
	}
	defer closeAll()
	return serveHTTP(ctx, *addr, h)
}
