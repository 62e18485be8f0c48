package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// healthTimeout bounds how long a server that listens may take to answer /healthz.
const healthTimeout = 10 * time.Second

// server is a running server of the comparison, with the client that loads it.
type server struct {
	kind   kind
	proc   *child
	target target
	client *http.Client
}

// startServer starts a server of kind k on the database dsn at isolation level iso,
// and returns once it has answered a document request.
func startServer(ctx context.Context, cs *children, cfg config, bins binaries, k kind, dsn, iso string) (*server, error) {
	var proc *child
	var err error
	dsn = withParam(dsn, "application_name", appName(k))
	if k.example {
		proc, err = startChild(ctx, "example-app", bins.exampleApp, []string{"serve"}, []string{
			"DATABASE_URL=" + dsn, "ADDR=127.0.0.1:0", "ISOLATION=" + iso, "AUTO_CREATE=",
		})
	} else {
		proc, err = startChild(ctx, k.name, bins.benchserver, []string{"-mode", k.name, "-isolation", iso},
			[]string{"DATABASE_URL=" + dsn})
	}
	if err != nil {
		return nil, err
	}
	cs.add(proc)
	t, err := newTarget(proc.addr, k.example, cfg.maxTenants(), cfg.documents)
	if err != nil {
		return nil, proc.failed(err)
	}
	s := &server{kind: k, proc: proc, target: t, client: newClient(cfg.clients)}
	if err := s.ready(ctx); err != nil {
		s.stop()
		return nil, proc.failed(err)
	}
	return s, nil
}

// ready waits for /healthz to answer 200, then checks that a document request does.
func (s *server) ready(ctx context.Context) error {
	deadline := time.Now().Add(healthTimeout)
	for {
		status, _, err := s.get(ctx, "http://"+s.proc.addr+"/healthz", nil)
		if err == nil && status == http.StatusOK {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/healthz did not answer 200 within %v: %d %v", healthTimeout, status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	req, err := s.target.request(ctx, 0, 0)
	if err != nil {
		return err
	}
	status, body, err := s.get(ctx, "", req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s (host %s): %d %s", req.URL, req.Host, status, body)
	}
	return nil
}

// get sends req, or a GET of url when req is nil, and returns the status and the
// start of the body.
func (s *server) get(ctx context.Context, url string, req *http.Request) (int, string, error) {
	if req == nil {
		var err error
		if req, err = http.NewRequestWithContext(ctx, http.MethodGet, url, nil); err != nil {
			return 0, "", err
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(body), err
}

// stop stops the server's process and closes its client's connections.
func (s *server) stop() {
	s.proc.Stop()
	s.client.CloseIdleConnections()
}

// startProxy starts the delaying proxy in front of the database of dsn and returns it
// with dsn rewritten to connect through it.
func startProxy(ctx context.Context, cs *children, bins binaries, dsn string, delay time.Duration) (*child, string, error) {
	_, addr, err := upstream(dsn)
	if err != nil {
		return nil, "", err
	}
	proc, err := startChild(ctx, "delay-proxy", bins.benchserver,
		[]string{"-mode", "delay-proxy", "-upstream", addr, "-delay", delay.String()}, nil)
	if err != nil {
		return nil, "", err
	}
	cs.add(proc)
	host, port, err := net.SplitHostPort(proc.addr)
	if err != nil {
		proc.Stop()
		return nil, "", proc.failed(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		proc.Stop()
		return nil, "", proc.failed(err)
	}
	return proc, withHostPort(dsn, host, p), nil
}
