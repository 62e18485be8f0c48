package tenant_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/tenantctx"
)

// terminate ends the backend pid from outside, as an operator or a failover would,
// and waits until it is gone.
func (e *env) terminate(t *testing.T, pid int) {
	t.Helper()
	ctx := context.Background()
	_, err := e.admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return e.count(t, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 0
	}, 10*time.Second, 10*time.Millisecond)
}

// backendPID is the pid of the backend serving the request's transaction.
func backendPID(t *testing.T, r *http.Request) int {
	t.Helper()
	var pid int
	require.NoError(t, tenantctx.Session(r.Context()).QueryRow(r.Context(), "SELECT pg_backend_pid()").Scan(&pid))
	return pid
}

// A backend terminated in the middle of a request took its transaction with it,
// uncommitted: the request runs again on another connection and its write is kept
// once. When the handler did not notice (its last query ran before the termination),
// COMMIT finds the connection dead: the same. Until now the first answered the
// handler's 500 and the second "commit failed", for a write that was not there.
func TestTerminatedBackendRunsTheRequestAgain(t *testing.T) {
	a := newTenantName("term")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	for _, tc := range []struct {
		name string
		// afterTerminate runs in the first attempt, once its backend is gone.
		afterTerminate func(w http.ResponseWriter, r *http.Request)
	}{
		{"the handler sees the error", func(w http.ResponseWriter, r *http.Request) {
			_, err := tenantctx.Session(r.Context()).Exec(r.Context(), "UPDATE counter SET value = value + 1")
			assert.Error(t, err)
			http.Error(w, "the database went away", 500)
		}},
		{"COMMIT sees it", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := newTenantName("row")
			var attempts atomic.Int32
			h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				insertItem(t, r, token)
				if attempts.Add(1) == 1 {
					e.terminate(t, backendPID(t, r))
					tc.afterTerminate(w, r)
					return
				}
				w.WriteHeader(http.StatusCreated)
			}))
			rec := do(h, "POST", "/", nil, "X-Tenant", a)
			assert.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
			assert.Equal(t, int32(2), attempts.Load())
			assert.Equal(t, 1, e.items(t, a, token), "the second attempt's insert, once")

			// The pool of one has recovered: the next request is served.
			rec = do(tenant.Middleware(e.mgr)(showTenant), "GET", "/", nil, "X-Tenant", a)
			assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		})
	}
}

// When the connection dies on every attempt, the answer is 503 (the database is not
// there), not 409, and nothing is written.
func TestConnectionLostOnTheLastAttempt(t *testing.T) {
	a := newTenantName("term")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader, Attempts: 2}, a)
	token := newTenantName("row")
	var attempts atomic.Int32
	h := tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		insertItem(t, r, token)
		e.terminate(t, backendPID(t, r))
		w.WriteHeader(http.StatusCreated)
	}))
	rec := do(h, "POST", "/", nil, "X-Tenant", a)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Equal(t, int32(2), attempts.Load())
	assert.Equal(t, 0, e.items(t, a, token))
}

// cutter wraps the Manager's connections; armed, it cuts the next connection that
// sends COMMIT, in one of the ways a connection dies in COMMIT's round trip.
type cutter struct {
	armed   atomic.Bool
	how     cut
	queries atomic.Int32        // parts of the write that was cut the server answers on their own: Query messages, or Flush and Sync
	crash   func(answer []byte) // crashBeforeCommit: makes the server crash, given the check's answer
}

type cut int

const (
	cutAfterCommit    cut = iota // the server committed; nothing of its answer arrives
	cutAfterCheck                // the server committed; only the binding's check's answer arrives
	fatalBeforeCheck             // the script never reaches the server, whose FATAL arrives instead
	crashBeforeCommit            // the check (sent apart) is answered, then the server crashes before COMMIT
)

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: conn, c: c}, nil
}

type cutConn struct {
	net.Conn
	c       *cutter
	mu      sync.Mutex
	cutting bool   // COMMIT was sent: answer what the cutter keeps, then fail
	flushed bool   // the check went before a Flush (the prepared end): no ReadyForQuery follows its answer
	pending []byte // what is left to pass on before failing
	cut     bool
}

var errCut = errors.New("test: connection cut")

// commitEnd reports whether p is the write that ends a transaction with COMMIT: the
// script (the check's text and COMMIT), or the prepared end (a Bind of its COMMIT,
// the third of its statements; the first end on a connection also parses them).
func commitEnd(p []byte) bool {
	return bytes.Contains(p, []byte("COMMIT")) && bytes.Contains(p, []byte("tenant_transaction_intact")) ||
		bytes.Contains(p, []byte("tenant_stmt_end_2\x00"))
}

func (c *cutConn) Write(p []byte) (int, error) {
	if commitEnd(p) && c.c.armed.CompareAndSwap(true, false) {
		c.mu.Lock()
		c.cutting = true
		c.mu.Unlock()
		checkEnd := 0 // the end of the first part answered on its own: the first Query, or up to the first Flush
		for off := 0; off+5 <= len(p); off += 1 + int(binary.BigEndian.Uint32(p[off+1:])) {
			switch p[off] {
			case 'Q', 'H', 'S':
				c.c.queries.Add(1)
				if checkEnd == 0 {
					checkEnd, c.flushed = off+1+int(binary.BigEndian.Uint32(p[off+1:])), p[off] == 'H'
				}
			}
		}
		switch c.c.how {
		case fatalBeforeCheck:
			return len(p), nil
		case crashBeforeCommit: // only the check goes
			if _, err := c.Conn.Write(p[:checkEnd]); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

func (c *cutConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cutting {
		return c.Conn.Read(p)
	}
	if !c.cut {
		switch c.c.how {
		case fatalBeforeCheck:
			c.pending = fatalTerminating()
		case crashBeforeCommit:
			until := readUntilReady
			if c.flushed {
				until = readUntilCommandComplete
			}
			answer, err := until(c.Conn, 'T')
			if err != nil {
				return 0, err
			}
			c.c.crash(answer)
			c.pending = answer
		default:
			answer, err := readUntilReady(c.Conn, 'I')
			if err != nil {
				return 0, err
			}
			if c.c.how == cutAfterCheck {
				c.pending = answer[:firstCommandComplete(answer)]
			}
		}
		_ = c.Conn.Close()
		c.cut = true
	}
	if len(c.pending) == 0 {
		return 0, errCut
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// fatalTerminating is the ErrorResponse of a terminated backend.
func fatalTerminating() []byte {
	var fields []byte
	for _, f := range []string{"SFATAL", "VFATAL", "C57P01", "Mterminating connection due to administrator command"} {
		fields = append(append(fields, f...), 0)
	}
	fields = append(fields, 0)
	return append(binary.BigEndian.AppendUint32([]byte{'E'}, uint32(4+len(fields))), fields...)
}

// readUntilReady reads backend messages up to and including the ReadyForQuery with
// the transaction status given: 'I' when the transaction ended, 'T' while it is open.
func readUntilReady(conn net.Conn, status byte) ([]byte, error) {
	return readUntil(conn, func(buf []byte) int {
		for off := 0; off+5 <= len(buf); {
			end := off + 1 + int(binary.BigEndian.Uint32(buf[off+1:]))
			if end > len(buf) {
				break
			}
			if buf[off] == 'Z' && buf[end-1] == status {
				return end
			}
			off = end
		}
		return 0
	})
}

// readUntilCommandComplete reads backend messages up to and including the first
// CommandComplete (status is not used: it matches readUntilReady).
func readUntilCommandComplete(conn net.Conn, _ byte) ([]byte, error) {
	return readUntil(conn, firstCommandComplete)
}

// readUntil reads from conn until end, given what was read, returns how much of it to
// keep (not 0).
func readUntil(conn net.Conn, end func([]byte) int) ([]byte, error) {
	var buf []byte
	chunk := make([]byte, 8192)
	for {
		n, err := conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if e := end(buf); e > 0 {
			return buf[:e], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// firstCommandComplete is the length of the messages up to and including the first
// CommandComplete: the binding's check, answered.
func firstCommandComplete(buf []byte) int {
	for off := 0; off+5 <= len(buf); {
		end := off + 1 + int(binary.BigEndian.Uint32(buf[off+1:]))
		if end > len(buf) {
			break
		}
		if buf[off] == 'C' {
			return end
		}
		off = end
	}
	return 0
}

// A connection that dies in COMMIT's round trip. After the server committed, with the
// check's answer (and the transaction's id) come: the Manager asks another connection
// whether it committed, and answers the handler's 201 (until now: 500, for a write that
// was there). With nothing back at all, the outcome is unknown: 500, and the request
// is not run again, which would write twice; unless it was read-only, with nothing to
// lose. With the server's FATAL before the check's answer, COMMIT never ran: the
// request runs again. A GET's check is sent with its COMMIT, not apart: it resolves
// the same when the check's answer came.
func TestCommitReplyLost(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		readOnly bool
		how      cut
		status   int
		attempts int32
	}{
		{"the check answered: committed", "POST", false, cutAfterCheck, http.StatusCreated, 1},
		{"nothing answered: unknown", "POST", false, cutAfterCommit, http.StatusInternalServerError, 1},
		{"FATAL before the check: not committed", "POST", false, fatalBeforeCheck, http.StatusCreated, 2},
		{"a GET that writes, the check answered", "GET", false, cutAfterCheck, http.StatusCreated, 1},
		{"read-only, nothing answered: nothing to lose", "GET", true, cutAfterCommit, http.StatusOK, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, cut := newTenantName("cut"), &cutter{how: tc.how}
			e := newEnvOn(t, testdb.URL(t), 2, []pool.Option{pool.WithConfig(func(c *pgxpool.Config) {
				c.ConnConfig.DialFunc = cut.dial
			})}, tenant.Config{Resolver: byHeader}, a)
			token := newTenantName("row")
			var attempts atomic.Int32
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if attempts.Add(1) == 1 {
					cut.armed.Store(true)
				}
				if tc.readOnly {
					var n int
					if !assert.NoError(t, tenantctx.Session(r.Context()).QueryRow(r.Context(), "SELECT count(*) FROM items").Scan(&n)) {
						return
					}
					return
				}
				insertItem(t, r, token)
				w.WriteHeader(http.StatusCreated)
			})
			if tc.readOnly {
				h = tenant.ReadOnly()(h)
			}
			rec := do(tenant.Middleware(e.mgr)(h), tc.method, "/", nil, "X-Tenant", a)
			assert.Equal(t, tc.status, rec.Code, rec.Body.String())
			if tc.status == http.StatusInternalServerError {
				assert.Equal(t, "commit outcome unknown\n", rec.Body.String())
			}
			assert.Equal(t, tc.attempts, attempts.Load(), "a COMMIT that may have run is never run again")
			if !tc.readOnly {
				assert.Equal(t, 1, e.items(t, a, token), "committed once")
			}
			assert.False(t, cut.armed.Load(), "the cut happened")
			apart := tc.method != "GET"
			assert.Equal(t, map[bool]int32{true: 2, false: 1}[apart], cut.queries.Load(), "the check apart from COMMIT: %v", apart)
		})
	}
}

// Run, too, runs fn again when the connection died under it, and commits once.
func TestRunAfterATerminatedBackend(t *testing.T) {
	a := newTenantName("term")
	e := newEnv(t, 1, tenant.Config{}, a)
	token := newTenantName("row")
	var attempts atomic.Int32
	err := e.mgr.Run(context.Background(), a, func(ctx context.Context) error {
		db := tenantctx.Session(ctx)
		if _, err := db.Exec(ctx, "INSERT INTO items (name) VALUES ($1)", token); err != nil {
			return err
		}
		if attempts.Add(1) == 1 {
			var pid int
			require.NoError(t, db.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
			e.terminate(t, pid)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, int32(2), attempts.Load())
	assert.Equal(t, 1, e.items(t, a, token))
}

// A read-only export whose connection died before any of it was sent runs again,
// rather than streaming what the handler made of the error.
func TestReadOnlyStreamAfterATerminatedBackend(t *testing.T) {
	a := newTenantName("term")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader, BufferBytes: 1024}, a)
	var attempts atomic.Int32
	h := tenant.Middleware(e.mgr)(tenant.ReadOnly()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db := tenantctx.Session(r.Context())
		if attempts.Add(1) == 1 {
			e.terminate(t, backendPID(t, r))
		}
		var n int
		if err := db.QueryRow(r.Context(), "SELECT count(*) FROM items").Scan(&n); err != nil {
			http.Error(w, strings.Repeat("the database went away ", 100), 500) // more than the buffer
			return
		}
		_, _ = fmt.Fprintf(w, "%d items\n%s", n, strings.Repeat(".", 4096))
	})))
	rec := do(h, "GET", "/", nil, "X-Tenant", a)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.True(t, strings.HasPrefix(rec.Body.String(), "0 items\n"), rec.Body.String()[:40])
	assert.Equal(t, int32(2), attempts.Load())
}
