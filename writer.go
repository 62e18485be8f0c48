package tenant

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
)

// errResponseDropped is what a handler's writes return once its response failed to
// begin streaming: the client gets an error answer instead, and nothing more.
var errResponseDropped = errors.New("tenant: response dropped: the transaction did not end before streaming")

// bufferedWriter keeps a handler's response (status, headers, body) in memory so the
// transaction can commit, or the handler run again, before the client sees a byte.
// When the handler flushes, hijacks, or writes more than the limit, bufferedWriter
// calls beforeStream once (which commits or rolls back) and streams from then on.
// Unwrap keeps http.ResponseController working.
type bufferedWriter struct {
	rw           http.ResponseWriter
	limit        int
	beforeStream func(status int) error

	header    http.Header
	status    int
	body      bytes.Buffer
	streaming bool
	failed    error
}

// newBufferedWriter buffers up to limit bytes for rw. beforeStream gets the status the
// handler set (200 if none) and must end the transaction; when it fails, nothing is
// sent and later writes return errResponseDropped.
func newBufferedWriter(rw http.ResponseWriter, limit int, beforeStream func(status int) error) *bufferedWriter {
	return &bufferedWriter{rw: rw, limit: limit, beforeStream: beforeStream, header: rw.Header().Clone()}
}

// Header returns the buffered header map (the real one once streaming). It starts as a
// copy of the real one, so headers set by outer middleware (Vary, CORS) are seen and
// kept, exactly as without buffering. After a failed stream it is the buffered map
// again: nothing the handler sets reaches the client's error answer.
func (b *bufferedWriter) Header() http.Header {
	if b.streaming && b.failed == nil {
		return b.rw.Header()
	}
	return b.header
}

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

// Failed returns the error of a beforeStream that failed, else nil.
func (b *bufferedWriter) Failed() error { return b.failed }

// Release writes the buffered response to the underlying writer. It does nothing once
// streaming began. It sets Content-Length to the buffered body's length when the
// handler set neither it nor Transfer-Encoding (as net/http does for a handler that
// returns without flushing), so that a Flush right after sends the whole response.
func (b *bufferedWriter) Release() error {
	if b.streaming || b.failed != nil {
		return nil
	}
	if b.body.Len() > 0 && b.header.Get("Content-Length") == "" && b.header.Get("Transfer-Encoding") == "" {
		b.header.Set("Content-Length", strconv.Itoa(b.body.Len()))
	}
	replaceHeader(b.rw.Header(), b.header)
	b.rw.WriteHeader(b.Status())
	_, err := b.rw.Write(b.body.Bytes())
	return err
}

// endTx calls beforeStream once, on the way to streaming.
func (b *bufferedWriter) endTx() error {
	if b.failed != nil {
		return b.failed
	}
	if b.streaming {
		return nil
	}
	b.streaming = true
	if err := b.beforeStream(b.Status()); err != nil {
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
	for k := range dst {
		if _, keep := src[k]; !keep {
			delete(dst, k)
		}
	}
	for k, v := range src {
		dst[k] = v
	}
}
