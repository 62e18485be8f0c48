package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tenantkit/tenant/internal/delayproxy"
)

// serveHTTP serves h on addr until ctx ends, then shuts down.
func serveHTTP(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Printf("benchserver: listening on %s\n", ln.Addr())
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// serveProxy forwards connections on addr to upstream, each direction delayed, until
// ctx ends. An upstream starting with "/" is a Unix socket.
func serveProxy(ctx context.Context, addr, upstream string, delay time.Duration) error {
	if upstream == "" {
		return errors.New("delay-proxy: -upstream is required")
	}
	network := "tcp"
	if strings.HasPrefix(upstream, "/") {
		network = "unix"
	}
	p, err := delayproxy.Listen(addr, network, upstream, delay)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve() }()
	fmt.Printf("benchserver: listening on %s\n", p.Addr())
	select {
	case err := <-done:
		_ = p.Close()
		return err
	case <-ctx.Done():
	}
	return p.Close()
}
