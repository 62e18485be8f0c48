// Package delayproxy is a TCP proxy that delays each direction of every connection by
// a fixed amount, as a network between an application and its database would. The
// HTTP benchmark puts it between its servers and PostgreSQL, so that a request's
// latency follows the number of round trips it makes.
//
// Each direction is a delayed-delivery queue: a chunk read from one side is written to
// the other side delay after it was read, in order. Chunks in flight overlap (a
// pipelined burst costs one delay, not one per message), and a slow direction never
// holds up the other.
package delayproxy

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Proxy accepts connections on its listener and forwards each to the upstream address,
// delaying both directions.
type Proxy struct {
	ln       net.Listener
	network  string // of the upstream: "tcp" or "unix"
	upstream string
	delay    time.Duration

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen listens on addr (TCP, e.g. "127.0.0.1:0") for connections to forward to
// upstream on network ("tcp" or "unix"), each direction delayed by delay. Serve
// accepts them.
func Listen(addr, network, upstream string, delay time.Duration) (*Proxy, error) {
	if delay < 0 {
		return nil, errors.New("delayproxy: negative delay")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Proxy{ln: ln, network: network, upstream: upstream, delay: delay, conns: map[net.Conn]struct{}{}}, nil
}

// Addr is where clients connect.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Serve accepts and forwards connections until Close; it then returns nil.
func (p *Proxy) Serve() error {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if !p.track(client) {
			_ = client.Close()
			return nil
		}
		p.wg.Go(func() { p.forward(client) })
	}
}

// Close stops accepting, closes every forwarded connection and waits for their
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// track registers c so that Close can close it; false once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// untrack forgets c.
func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// forward connects client to the upstream and runs both directions until both end.
func (p *Proxy) forward(client net.Conn) {
	defer p.untrack(client)
	defer func() { _ = client.Close() }()
	server, err := net.Dial(p.network, p.upstream)
	if err != nil {
		return
	}
	if !p.track(server) {
		_ = server.Close()
		return
	}
	defer p.untrack(server)
	defer func() { _ = server.Close() }()
	var wg sync.WaitGroup
	wg.Go(func() { pipe(server, client, p.delay) })
	wg.Go(func() { pipe(client, server, p.delay) })
	wg.Wait()
}
