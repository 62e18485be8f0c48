package delayproxy_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/delayproxy"
)

// echo serves an upstream that writes back what it reads, until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// proxy starts a proxy to upstream with the given delay, closed when the test ends.
func proxy(t *testing.T, upstream string, delay time.Duration) string {
	t.Helper()
	p, err := delayproxy.Listen("127.0.0.1:0", "tcp", upstream, delay)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Serve() }()
	t.Cleanup(func() {
		assert.NoError(t, p.Close())
		assert.NoError(t, <-done)
	})
	return p.Addr().String()
}

func TestRoundTripTakesBothDelays(t *testing.T) {
	const delay = 5 * time.Millisecond
	c, err := net.Dial("tcp", proxy(t, echo(t), delay))
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	buf := make([]byte, 4)
	for range 3 {
		start := time.Now()
		_, err := c.Write([]byte("ping"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), 2*delay)
		assert.Equal(t, "ping", string(buf))
	}
}

// A burst of writes is delayed as a whole, not once per write, and arrives in order.
func TestBurstIsPipelinedInOrder(t *testing.T) {
	const delay = 20 * time.Millisecond
	c, err := net.Dial("tcp", proxy(t, echo(t), delay))
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	var sent bytes.Buffer
	start := time.Now()
	for i := range 50 {
		msg := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
		sent.Write(msg)
		_, err := c.Write(msg)
		require.NoError(t, err)
	}
	got := make([]byte, sent.Len())
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	elapsed := time.Since(start)
	assert.Equal(t, sent.Bytes(), got)
	assert.GreaterOrEqual(t, elapsed, 2*delay)
	assert.Less(t, elapsed, 20*delay, "50 writes must not cost 50 delays")
}

// A client that closes its side sees the upstream's close in turn, and Close ends
// connections still open.
func TestCloseEndsConnections(t *testing.T) {
	addr := proxy(t, echo(t), time.Millisecond)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = c.Write([]byte("bye"))
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, "bye", string(got))
	_ = c.Close()

	open, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer func() { _ = open.Close() }()
	_, err = open.Write([]byte("x"))
	require.NoError(t, err)
	// The test's cleanup closes the proxy while this connection is open; Close must
	// not wait for the client.
}

func TestUnreachableUpstreamClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	c, err := net.Dial("tcp", proxy(t, dead, time.Millisecond))
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
}
