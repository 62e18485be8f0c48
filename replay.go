package tenant

import (
	"bytes"
	"context"
	"io"
	"net/http"

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

// replayBody gives each attempt the request body from the start.
type replayBody struct {
	data []byte
	rest io.ReadCloser // the unread remainder of a body too long to replay, else nil
	used bool
}

// bufferBody reads up to limit bytes of the body. replayable is false when the body
// was longer (or failed to read): then it can be read once only.
func bufferBody(r *http.Request, limit int64) (*replayBody, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return &replayBody{}, true
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return &replayBody{data: data, rest: errReader{err}}, false
	}
	if int64(len(data)) > limit {
		return &replayBody{data: data, rest: r.Body}, false
	}
	return &replayBody{data: data}, true
}

func (b *replayBody) reader() io.ReadCloser {
	if b.rest != nil {
		if b.used {
			return io.NopCloser(errReader{io.ErrUnexpectedEOF})
		}
		b.used = true
		return struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b.data), b.rest), b.rest}
	}
	if len(b.data) == 0 {
		return http.NoBody
	}
	return io.NopCloser(bytes.NewReader(b.data))
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
func (e errReader) Close() error             { return nil }
