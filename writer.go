package tenant

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// errResponseDropped is what a handler's writes return once its response failed to
// begin streaming: the client gets an error answer instead, and nothing more.
var errResponseDropped = errors.New("tenant: response dropped: the transaction did not end before streaming")

// errResponseOver is what writes return once the handler returned and its response
// was answered: a goroutine that outlived it writes to nobody.
var errResponseOver = errors.New("tenant: response over: its handler returned")

// bufferedWriter keeps a handler's response (status, headers, body) in memory so the
// transaction can commit, or the handler run again, before the client sees a byte.
// When the handler flushes, hijacks, or writes more than the limit, bufferedWriter
// has its ender end the transaction, once, and streams from then on. Unwrap keeps
// http.ResponseController working.
//
// A writer is its attempt's (it lives in the attempt, which nothing reuses); the
// buffer, and the header map when the handler never asked for it, come from pools
// and go back once the attempt is over (recycle), never after a panic, nor while
// after-commit functions run. What goes back was handed to no one: the writer keeps
// no reference to it, the header values the client gets are the handler's, copies,
// or the attempt's, and ResponseWriters copy what is written to them. A goroutine
// that outlived the handler and uses the writer finds it closed (errResponseOver).
type bufferedWriter struct {
	rw    http.ResponseWriter
	limit int
	ender streamEnder
	// contentLength, when set, holds Release's Content-Length value: storage of the
	// attempt's, which is not reused.
	contentLength *[1]string

	header http.Header
	status int
	body   *bytes.Buffer
	failed error
	// headerOut: Header handed header to the handler, which may keep it: it is not
	// recycled.
	headerOut bool
	streaming bool
	recycled  bool
}

// streamEnder ends the transaction of a response about to stream: it gets the status
// the handler set (200 if none). When it fails, nothing is sent and later writes
// return errResponseDropped.
type streamEnder interface {
	endBeforeStream(status int) error
}

// enderFunc is a function as a streamEnder.
type enderFunc func(status int) error

func (f enderFunc) endBeforeStream(status int) error { return f(status) }

// Pools of what writers recycle.
var (
	buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	headers = sync.Pool{New: func() any { return make(http.Header) }}
)

// maxPooledBuffer bounds the buffers kept for reuse: one grown larger for a big
// response is dropped, not kept for the small ones.
const maxPooledBuffer = 64 << 10

// newBufferedWriter buffers up to limit bytes for rw. beforeStream gets the status the
// handler set (200 if none) and must end the transaction; when it fails, nothing is
// sent and later writes return errResponseDropped.
func newBufferedWriter(rw http.ResponseWriter, limit int, beforeStream func(status int) error) *bufferedWriter {
	b := new(bufferedWriter)
	b.init(rw, limit, enderFunc(beforeStream), nil)
	return b
}

// init readies b, unused so far, as newBufferedWriter does, with an ender and,
// optionally, storage for the Content-Length value.
func (b *bufferedWriter) init(rw http.ResponseWriter, limit int, ender streamEnder, contentLength *[1]string) {
	b.rw, b.limit, b.ender, b.contentLength = rw, limit, ender, contentLength
	m := headers.Get().(http.Header)
	if b.header = copyHeader(m, rw.Header()); b.header == nil {
		headers.Put(m)
	}
	b.body = buffers.Get().(*bytes.Buffer)
}

// recycle closes b and returns its buffer, and its header map unless the handler had
// it, to their pools. Call it once the attempt is over: the handler returned, and what
// it buffered was sent or dropped.
func (b *bufferedWriter) recycle() {
	if b.recycled {
		return
	}
	b.recycled = true
	if b.failed == nil {
		b.failed = errResponseOver
	}
	if !b.headerOut && b.header != nil {
		clear(b.header)
		headers.Put(b.header)
		b.header = nil
	}
	if b.body.Cap() <= maxPooledBuffer {
		b.body.Reset()
		buffers.Put(b.body)
	}
	b.body = nil
}

// copyHeader makes dst, empty (or nil), what src.Clone() returns: the same keys, nil
// values kept nil, the values copied into one new array (none when there are none).
func copyHeader(dst, src http.Header) http.Header {
	if src == nil {
		return nil
	}
	if dst == nil {
		dst = make(http.Header, len(src))
	}
	if len(src) == 0 {
		return dst
	}
	nv := 0
	for _, vv := range src {
		nv += len(vv)
	}
	sv := make([]string, nv) // allocates nothing for none
	for k, vv := range src {
		if vv == nil {
			dst[k] = nil
			continue
		}
		n := copy(sv, vv)
		dst[k] = sv[:n:n]
		sv = sv[n:]
	}
	return dst
}

// Header returns the buffered header map (the real one once streaming). It starts as a
// copy of the real one, so headers set by outer middleware (Vary, CORS) are seen and
// kept, exactly as without buffering. After a failed stream it is the buffered map
// again: nothing the handler sets reaches the client's error answer.
func (b *bufferedWriter) Header() http.Header {
	switch {
	case b.streaming && b.failed == nil:
		return b.rw.Header()
	case b.recycled && !b.headerOut: // the map went back to the pool: one for nobody
		return make(http.Header)
	}
	b.headerOut = true
	return b.header
}

// buffered is the buffered header map, for the lifecycle's own headers: unlike
// Header, it does not keep the map from being recycled.
func (b *bufferedWriter) buffered() http.Header { return b.header }

// WriteHeader records the status. Informational (1xx) statuses other than 101 go out at
// once, as they carry no data; 101 (switching protocols) starts streaming. An invalid
// status panics here, as net/http does, rather than when the buffered response is
// sent: by then the transaction would have committed. After a failed stream it does
// nothing.
func (b *bufferedWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	switch {
	case b.failed != nil:
	case b.streaming:
		b.rw.WriteHeader(code)
	case code == http.StatusSwitchingProtocols:
		b.status = code
		_ = b.stream()
	case code >= 100 && code < 200:
		replaceHeader(b.rw.Header(), b.header)
		b.rw.WriteHeader(code)
	case b.status == 0:
		b.status = code
	}
}

// Write buffers p, or streams once the buffer would exceed the limit.
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.failed != nil {
		return 0, b.failed
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if !b.streaming && b.body.Len()+len(p) > b.limit {
		if err := b.stream(); err != nil {
			return 0, err
		}
	}
	if b.streaming {
		return b.rw.Write(p)
	}
	return b.body.Write(p)
}

// FlushError ends the transaction, sends what is buffered and flushes.
func (b *bufferedWriter) FlushError() error {
	if err := b.stream(); err != nil {
		return err
	}
	return http.NewResponseController(b.rw).Flush()
}

// Flush is FlushError for http.Flusher.
func (b *bufferedWriter) Flush() { _ = b.FlushError() }

// Hijack ends the transaction and hands over the connection; what was buffered is
// dropped, as with net/http.
func (b *bufferedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if err := b.endTx(); err != nil {
		return nil, nil, err
	}
	return http.NewResponseController(b.rw).Hijack()
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (b *bufferedWriter) Unwrap() http.ResponseWriter { return b.rw }

// Status is the status the handler set, 200 when it set none.
func (b *bufferedWriter) Status() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// Streaming reports whether the response began to go out (flush, hijack, size).
func (b *bufferedWriter) Streaming() bool { return b.streaming }

// Failed returns errResponseDropped once the transaction failed to end before
// streaming, else nil.
func (b *bufferedWriter) Failed() error { return b.failed }

// Release writes the buffered response to the underlying writer. It does nothing once
// streaming began. It sets Content-Length to the buffered body's length when the
// handler set neither it nor Transfer-Encoding (as net/http does for a handler that
// returns without flushing), so that a Flush right after sends the whole response.
func (b *bufferedWriter) Release() error {
	if b.streaming || b.failed != nil {
		return nil
	}
	if b.body.Len() > 0 && firstValue(b.header, "Content-Length") == "" && firstValue(b.header, "Transfer-Encoding") == "" {
		if v := strconv.Itoa(b.body.Len()); b.contentLength != nil {
			b.contentLength[0] = v
			b.header["Content-Length"] = b.contentLength[:]
		} else {
			b.header.Set("Content-Length", v)
		}
	}
	replaceHeader(b.rw.Header(), b.header)
	b.rw.WriteHeader(b.Status())
	_, err := b.rw.Write(b.body.Bytes())
	return err
}

// endTx has the ender end the transaction, once, on the way to streaming.
func (b *bufferedWriter) endTx() error {
	if b.failed != nil {
		return b.failed
	}
	if b.streaming {
		return nil
	}
	b.streaming = true
	if err := b.ender.endBeforeStream(b.Status()); err != nil {
		b.failed = errResponseDropped // the lifecycle has the cause
		return b.failed
	}
	return nil
}

// stream ends the transaction and sends status, headers and buffered body.
func (b *bufferedWriter) stream() error {
	if b.streaming {
		return b.failed
	}
	if err := b.endTx(); err != nil {
		return err
	}
	replaceHeader(b.rw.Header(), b.header)
	b.rw.WriteHeader(b.Status())
	_, err := b.rw.Write(b.body.Bytes())
	b.body.Reset()
	return err
}

// replaceHeader makes dst equal to src (src began as a copy of dst, so deletions by the
// handler count too).
func replaceHeader(dst, src http.Header) {
	if len(dst) > 0 {
		for k := range dst {
			if _, keep := src[k]; !keep {
				delete(dst, k)
			}
		}
	}
	for k, v := range src {
		dst[k] = v
	}
}

// firstValue is h.Get(key) for a key in canonical form.
func firstValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
