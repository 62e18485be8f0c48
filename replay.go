package tenant

import (
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/go-chi/chi/v5"
)

// attemptRequest is the request one attempt hands the handler: the attempt's context,
// the body from the start, and its own copy of the router state. chi routes by
// rewriting its route context in place (the path left to match, URL parameters,
// patterns), and a handler may rewrite the URL: without copies, a retry would route
// what the first attempt left behind (a 404, or another handler).
func attemptRequest(r *http.Request, ctx context.Context, body *replayBody) *http.Request {
	if rctx := chi.RouteContext(ctx); rctx != nil {
		ctx = context.WithValue(ctx, chi.RouteCtxKey, rctx.Clone())
	}
	r2 := r.WithContext(ctx)
	u := *r.URL
	r2.URL = &u
	r2.Body = body.reader()
	return r2
}

// replayBody gives each attempt the request body from the start. It reads the body
// only as the handler does (so Expect: 100-continue works, and a body the handler does
// not read costs nothing), and keeps what was read, at most limit bytes, for an
// attempt that runs again. Attempts run one after another; the lock is for a handler
// that outlived its attempt (a TimeoutHandler's).
type replayBody struct {
	mu    sync.Mutex
	src   io.ReadCloser
	limit int64
	kept  []byte // what was read from src, while it fits in limit
	over  bool   // more than limit was read: nothing is kept, no attempt can replay
	done  error  // src's final error: io.EOF, or why it failed
}

func newReplayBody(r *http.Request, limit int64) *replayBody {
	if r.Body == nil || r.Body == http.NoBody {
		return &replayBody{done: io.EOF}
	}
	return &replayBody{src: r.Body, limit: limit}
}

// replayable reports whether another attempt can get the whole body the handler read.
func (b *replayBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.over && (b.done == nil || b.done == io.EOF)
}

// reader returns the body for an attempt: what earlier attempts read, then the rest.
func (b *replayBody) reader() io.ReadCloser {
	if b.src == nil {
		return http.NoBody
	}
	return &attemptBody{b: b}
}

// attemptBody is one attempt's view of the body. Closing it does nothing: net/http
// closes the request's body after the handler returns.
type attemptBody struct {
	b   *replayBody
	off int // bytes of the body this attempt has read
}

func (a *attemptBody) Read(p []byte) (int, error) {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.off < len(b.kept) {
		n := copy(p, b.kept[a.off:])
		a.off += n
		return n, nil
	}
	if b.done != nil {
		return 0, b.done
	}
	if b.over && a.off < int(b.limit) { // an attempt after one that read past the limit
		return 0, io.ErrUnexpectedEOF
	}
	n, err := b.src.Read(p)
	a.off += n
	switch {
	case b.over:
	case int64(len(b.kept)+n) > b.limit:
		b.over, b.kept = true, nil // too long to keep: this attempt is the only one
	default:
		b.kept = append(b.kept, p[:n]...)
	}
	if err != nil {
		b.done = err
	}
	return n, err
}

func (a *attemptBody) Close() error { return nil }
