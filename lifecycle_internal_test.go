package tenant

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant/locale"
)

// setLocaleHeaders and addVary do what locale.SetHeaders and locale.AddVary do, with
// the attempt's storage.
func TestLocaleHeadersAsLocalePackage(t *testing.T) {
	deCH := language.MustParse("de-CH")
	for _, vary := range [][]string{
		nil, {}, {"Origin"}, {"accept-language"}, {"Cookie"}, {"Origin, Cookie"}, {"*"}, {"Origin", " * "},
		{" Accept-Language ,\tcookie"}, {"Cookie", "Accept-Language"}, {"Accept-Language", "Cookie"},
		{"COOKIE"}, {"coo\u212Aie"}, {"\u00a0Cookie"}, {"Cookie\u0085"}, {""}, {",,"}, {"accept-language-x"},
	} {
		want, got := http.Header{}, http.Header{}
		if vary != nil {
			want["Vary"], got["Vary"] = append([]string(nil), vary...), append([]string(nil), vary...)
		}
		locale.SetHeaders(want, deCH)
		a := &httpAttempt{locale: &localeEntry{tag: deCH, name: deCH.String()}}
		a.setLocaleHeaders(got)
		assert.Equal(t, want, got, "%q", vary)

		locale.AddVary(want, "Accept-Language", "Cookie")
		a.addVary(got)
		assert.Equal(t, want, got, "%q, again", vary)
		want["Vary"], got["Vary"] = vary, vary
		locale.AddVary(want, "Accept-Language", "Cookie")
		a.addVary(got)
		assert.Equal(t, want, got, "%q, replaced", vary)
	}
}

// copyHeader makes what Header.Clone makes, into the map it is given.
func TestCopyHeaderIsClone(t *testing.T) {
	for _, h := range []http.Header{
		nil, {}, {"A": {"1"}}, {"A": {"1", "2"}, "B": nil, "C": {}}, {"Vary": {"Origin"}, "X": {""}},
	} {
		got := copyHeader(http.Header{"Stale": {"x"}}, h)
		if h == nil {
			assert.Nil(t, got)
			continue
		}
		delete(got, "Stale") // copyHeader is given an emptied map; the test's was not
		want := h.Clone()
		assert.Equal(t, want, got)
		for k, v := range want {
			assert.Equal(t, v == nil, got[k] == nil, "nil kept nil, empty kept empty: %s", k)
			assert.Equal(t, cap(v), cap(got[k]), "no room to append into another key's values: %s", k)
		}
		if v := h["A"]; len(v) > 0 {
			got["A"][0] = "changed"
			assert.NotEqual(t, "changed", h["A"][0], "values are copies")
		}
	}
	assert.Zero(t, testing.AllocsPerRun(100, func() { copyHeader(http.Header{}, http.Header{}) }))
}

// A recycled writer is closed: later writes fail and reach nobody, and it keeps no
// reference to what went back to the pools; a large buffer is not kept for reuse.
func TestRecycledWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	bw := newBufferedWriter(rec, DefaultBufferBytes, func(int) error { return nil })
	_, _ = bw.Write([]byte("hello"))
	require.NoError(t, bw.Release())
	pooled := bw.header
	bw.recycle()
	assert.Nil(t, bw.body)
	assert.Nil(t, bw.header)
	_, err := bw.Write([]byte("late"))
	assert.ErrorIs(t, err, errResponseOver)
	late := bw.Header()
	late.Set("X-Late", "1")
	assert.NotEqual(t, mapID(pooled), mapID(late), "not the map that went back to the pool")
	assert.ErrorIs(t, bw.FlushError(), errResponseOver)
	assert.Equal(t, "hello", rec.Body.String())
	assert.Empty(t, rec.Header().Get("X-Late"))

	// A map the handler had stays the handler's.
	bw = newBufferedWriter(httptest.NewRecorder(), DefaultBufferBytes, func(int) error { return nil })
	had := bw.Header()
	bw.recycle()
	assert.Equal(t, mapID(had), mapID(bw.Header()))
	for range 10 {
		h := headers.Get().(http.Header)
		assert.NotEqual(t, mapID(had), mapID(h))
	}

	// A large buffer is dropped.
	bw = newBufferedWriter(httptest.NewRecorder(), DefaultBufferBytes, func(int) error { return nil })
	_, _ = bw.Write([]byte(strings.Repeat("x", 2*maxPooledBuffer)))
	require.NoError(t, bw.Release())
	large := bw.body
	bw.recycle()
	for range 10 {
		assert.NotSame(t, large, buffers.Get().(*bytes.Buffer))
	}
}

func mapID(h http.Header) uintptr { return reflect.ValueOf(h).Pointer() }

// A writer whose handler panicked recycles nothing: what the panic interrupted may
// still refer to it.
func TestPanickedWriterNotRecycled(t *testing.T) {
	var bodies []*bytes.Buffer
	var maps []uintptr
	m := &Manager{bufferBytes: DefaultBufferBytes}
	for range 20 {
		func() {
			defer func() { assert.Equal(t, "boom", recover()) }()
			a := &httpAttempt{}
			a.init(m, context.Background(), &binding{name: "acme"}, context.Background(), &retries{m: m})
			a.serveHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte("x"))
				bw := w.(*bufferedWriter)
				bodies, maps = append(bodies, bw.body), append(maps, mapID(bw.header))
				panic("boom")
			}), &replayBody{}, true)
		}()
	}
	require.Len(t, bodies, 20)
	for range 20 {
		assert.NotContains(t, bodies, buffers.Get().(*bytes.Buffer))
		assert.NotContains(t, maps, mapID(headers.Get().(http.Header)))
	}
}
