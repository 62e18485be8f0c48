package tenant

import (
	"io"
	"net/http"
	"sync"
)

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

// init readies b, unused so far, for r's body.
func (b *replayBody) init(r *http.Request, limit int64) {
	if r.Body == nil || r.Body == http.NoBody {
		b.done = io.EOF
		return
	}
	b.src, b.limit = r.Body, limit
}

// replayable reports whether another attempt can get the whole body the handler read.
func (b *replayBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.over && (b.done == nil || b.done == io.EOF)
}

// reader returns the body for an attempt, through view (the attempt's, unused so
// far): what earlier attempts read, then the rest.
func (b *replayBody) reader(view *attemptBody) io.ReadCloser {
	if b.src == nil {
		return http.NoBody
	}
	view.b = b
	return view
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
