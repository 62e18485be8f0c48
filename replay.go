package tenant

import (
	"bytes"
	"io"
	"net/http"
)

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
