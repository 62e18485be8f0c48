package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// requestTimeout bounds one request of the load.
const requestTimeout = 30 * time.Second

// newClient returns a client keeping up to clients connections alive to one server.
func newClient(clients int) *http.Client {
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			Proxy:               nil, // loopback, whatever the environment says
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        clients,
			MaxIdleConnsPerHost: clients,
			DisableCompression:  true,
		},
	}
}

// worker is one client's share of a load: its latencies and failures.
type worker struct {
	latencies []time.Duration
	failed    int
	failure   string
}

// load sends requests from clients concurrent clients for d, each a document at
// random of a tenant at random among the first tenants, each client on a keep-alive
// connection of its own, and returns what the server did. It fails only when ctx ends.
func load(ctx context.Context, s *server, clients, tenants, documents int, d time.Duration, seed uint64) (sample, error) {
	workers := make([]worker, clients)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				w.do(ctx, s, rng.IntN(tenants), rng.IntN(documents))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return sample{}, err
	}
	out := sample{elapsed: elapsed}
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.latencies...)
		out.failed += w.failed
		if out.failure == "" {
			out.failure = w.failure
		}
	}
	slices.Sort(all)
	out.requests = len(all)
	out.p50, out.p99 = percentile(all, 50), percentile(all, 99)
	return out, nil
}

// do sends one request and records its latency, or its failure.
func (w *worker) do(ctx context.Context, s *server, tenant, doc int) {
	req, err := s.target.request(ctx, tenant, doc)
	if err != nil {
		w.fail(err.Error())
		return
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			w.fail(err.Error())
		}
		return
	}
	var head []byte
	if resp.StatusCode != http.StatusOK {
		head, _ = io.ReadAll(io.LimitReader(resp.Body, 200))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	took := time.Since(start)
	switch {
	case resp.StatusCode != http.StatusOK:
		w.fail(fmt.Sprintf("%s %s: %d %s", req.Host, req.URL.Path, resp.StatusCode, head))
	case err != nil:
		w.fail(err.Error())
	default:
		w.latencies = append(w.latencies, took)
	}
}

// fail counts a failure, keeping the first one's description.
func (w *worker) fail(what string) {
	w.failed++
	if w.failure == "" {
		w.failure = what
	}
}
