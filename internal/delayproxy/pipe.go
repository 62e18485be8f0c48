package delayproxy

import (
	"net"
	"time"
)

// queueChunks bounds the chunks in flight per direction; a full queue stops reading,
// which pushes back on the sender through TCP as a slow network would.
const queueChunks = 1024

// readSize is the most one read takes from a connection.
const readSize = 32 << 10

// chunk is what one read returned, and when it is due at the other side.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk delivered delay after it was read, in order. When
// src ends, dst's write side is closed once everything before has been delivered;
// when dst fails, both are closed so that the other direction ends too.
func pipe(dst, src net.Conn, delay time.Duration) {
	queue := make(chan chunk, queueChunks)
	go func() {
		defer close(queue)
		buf := make([]byte, readSize)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				queue <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range queue {
		if wait := time.Until(c.due); wait > 0 {
			time.Sleep(wait)
		}
		if _, err := dst.Write(c.data); err != nil {
			_ = dst.Close()
			_ = src.Close()
			for range queue { // let the reader finish
			}
			return
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
