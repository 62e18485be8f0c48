package main

import (
	"bytes"
	"regexp"
	"sync"
)

// outputLogBytes is how much of a child's output is kept: the end of it.
const outputLogBytes = 16 << 10

// outputLog keeps the end of a child's output, for error messages.
type outputLog struct {
	mu  sync.Mutex
	buf []byte
}

// Write appends p, dropping the oldest bytes beyond outputLogBytes.
func (l *outputLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - outputLogBytes; over > 0 {
		l.buf = append(l.buf[:0], l.buf[over:]...)
	}
	return len(p), nil
}

// tail returns the output kept.
func (l *outputLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// listenLine is how the children announce their address: benchserver prints
// "benchserver: listening on ADDR", the example app "example-app: serving on ADDR".
var listenLine = regexp.MustCompile(`(?:listening|serving) on (\S+)`)

// addrWatcher passes a child's stdout to its log and reports the first address it
// announces.
type addrWatcher struct {
	log     *outputLog
	found   chan<- string // buffered; receives one address
	partial []byte        // an unfinished line
	done    bool
}

// Write logs p and looks for the address in its complete lines.
func (w *addrWatcher) Write(p []byte) (int, error) {
	_, _ = w.log.Write(p)
	if w.done {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := w.partial[:i]
		w.partial = w.partial[i+1:]
		if m := listenLine.FindSubmatch(line); m != nil {
			w.found <- string(m[1])
			w.done, w.partial = true, nil
			return len(p), nil
		}
	}
}
