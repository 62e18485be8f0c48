package tenant

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type finishRecorder struct {
	calls  int
	status int
	err    error
	rec    *httptest.ResponseRecorder
	// sentAtFinish records whether anything had reached the client when finish ran.
	sentAtFinish bool
}

func (f *finishRecorder) finish(status int) error {
	f.calls++
	f.status = status
	f.sentAtFinish = f.rec.Code != 200 || f.rec.Body.Len() > 0 || len(f.rec.Header()) > 0
	return f.err
}

func newBW(limit int) (*bufferedWriter, *finishRecorder) {
	if limit == 0 {
		limit = DefaultBufferBytes
	}
	f := &finishRecorder{rec: httptest.NewRecorder()}
	return newBufferedWriter(f.rec, limit, f.finish), f
}

func TestBufferedWriterHoldsResponse(t *testing.T) {
	bw, f := newBW(0)
	bw.Header().Set("X-A", "1")
	bw.WriteHeader(201)
	bw.WriteHeader(500) // ignored, as net/http does
	_, _ = io.WriteString(bw, "hello")
	assert.Equal(t, 201, bw.Status())
	assert.Zero(t, f.rec.Body.Len(), "nothing reaches the client before Release")
	assert.Empty(t, f.rec.Header())
	require.NoError(t, bw.Release())
	assert.Equal(t, 201, f.rec.Code)
	assert.Equal(t, "hello", f.rec.Body.String())
	assert.Equal(t, "1", f.rec.Header().Get("X-A"))
	assert.Zero(t, f.calls, "no streaming, no early finish")
}

func TestBufferedWriterStreamsOverLimit(t *testing.T) {
	bw, f := newBW(10)
	_, _ = io.WriteString(bw, "12345")
	assert.Zero(t, f.calls)
	_, _ = io.WriteString(bw, "678901")
	assert.Equal(t, 1, f.calls)
	assert.False(t, f.sentAtFinish, "finish runs before the first byte is sent")
	assert.True(t, bw.Streaming())
	_, _ = io.WriteString(bw, "more")
	assert.Equal(t, "12345678901more", f.rec.Body.String())
	require.NoError(t, bw.Release(), "a no-op once streaming")
	assert.Equal(t, "12345678901more", f.rec.Body.String())
	assert.Equal(t, 1, f.calls)
}

func TestBufferedWriterFlush(t *testing.T) {
	bw, f := newBW(0)
	bw.WriteHeader(202)
	_, _ = io.WriteString(bw, "a")
	require.NoError(t, http.NewResponseController(bw).Flush())
	assert.Equal(t, 1, f.calls)
	assert.Equal(t, 202, f.status)
	assert.False(t, f.sentAtFinish)
	assert.True(t, f.rec.Flushed)
	assert.Equal(t, "a", f.rec.Body.String())
	bw.Flush()
	assert.Equal(t, 1, f.calls, "finish runs once")
}

func TestBufferedWriterFinishFailure(t *testing.T) {
	bw, f := newBW(0)
	f.err = errors.New("commit failed")
	_, _ = io.WriteString(bw, "a")
	err := http.NewResponseController(bw).Flush()
	assert.ErrorIs(t, err, errResponseDropped)
	_, err = io.WriteString(bw, "b")
	assert.ErrorIs(t, err, errResponseDropped)
	assert.Zero(t, f.rec.Body.Len(), "nothing was sent")
	assert.Error(t, bw.Failed())
	require.NoError(t, bw.Release())
	assert.Zero(t, f.rec.Body.Len())

	// What the handler does after the failure reaches nobody: the lifecycle answers.
	bw.Header().Set("X-Late", "1")
	bw.WriteHeader(http.StatusTeapot)
	_, err = io.WriteString(bw, "late")
	assert.ErrorIs(t, err, errResponseDropped)
	assert.Empty(t, f.rec.Header().Get("X-Late"))
	assert.False(t, f.rec.Flushed || f.rec.Code == http.StatusTeapot, "no status was sent")
}

// An invalid status panics when the handler sets it, as net/http does, not when the
// buffered response is sent after COMMIT.
func TestBufferedWriterInvalidStatus(t *testing.T) {
	for _, code := range []int{0, 42, 99, 1000} {
		bw, f := newBW(0)
		assert.PanicsWithValue(t, fmt.Sprintf("invalid WriteHeader code %v", code), func() { bw.WriteHeader(code) })
		assert.Zero(t, f.calls, "the transaction was not ended")
	}
}

func TestBufferedWriterInformational(t *testing.T) {
	bw, f := newBW(0)
	bw.Header().Set("Link", "</style.css>; rel=preload")
	bw.WriteHeader(http.StatusEarlyHints)
	assert.Zero(t, f.calls, "1xx carries no data: no commit needed")
	bw.WriteHeader(200)
	assert.Equal(t, 200, bw.Status())
}

func TestBufferedWriterUnwrap(t *testing.T) {
	bw, f := newBW(0)
	assert.Same(t, f.rec, bw.Unwrap())
	_, _, err := http.NewResponseController(bw).Hijack()
	assert.ErrorIs(t, err, http.ErrNotSupported, "the recorder cannot hijack; the error says so")
	assert.Equal(t, 1, f.calls, "the transaction ended before the hijack was tried")
}

// Headers an outer middleware set are visible to the handler and kept, as without
// buffering; a retry starts again from them.
func TestBufferedWriterKeepsOuterHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Vary", "Origin")
	rec.Header().Set("X-Outer", "1")
	rec.Header().Set("X-Removed", "1")
	bw := newBufferedWriter(rec, DefaultBufferBytes, func(int) error { return nil })
	assert.Equal(t, "Origin", bw.Header().Get("Vary"))
	bw.Header().Add("Vary", "Accept-Language")
	bw.Header().Del("X-Removed")
	bw.Header().Set("X-Attempt", "1")
	// A retry gets a writer of its own: it starts again from the outer headers.
	bw = newBufferedWriter(rec, DefaultBufferBytes, func(int) error { return nil })
	assert.Equal(t, []string{"Origin"}, bw.Header().Values("Vary"), "a retry starts from the outer headers")
	bw.Header().Add("Vary", "Accept-Language")
	bw.Header().Del("X-Removed")
	require.NoError(t, bw.Release())
	assert.Equal(t, []string{"Origin", "Accept-Language"}, rec.Header().Values("Vary"))
	assert.Equal(t, "1", rec.Header().Get("X-Outer"))
	assert.Empty(t, rec.Header().Get("X-Removed"))
	assert.Empty(t, rec.Header().Get("X-Attempt"))
}
