package main

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// warmSet is the bounded set of warm connections of the per-tenant login mode: at
// most max connections in all, each logged in as one tenant's role. A request takes an
// idle connection of its tenant (a hit); else opens one if the set has room; else
// closes the least recently used idle connection, of any tenant, to open one (a miss
// either way); else waits for a release.
type warmSet struct {
	max     int
	connect func(ctx context.Context, tenant int) (*pgx.Conn, error)

	mu     sync.Mutex
	cond   *sync.Cond
	open   int                     // connections open or opening
	idle   map[int][]*list.Element // a tenant's idle connections
	lru    list.List               // idle connections, most recently used first
	hits   int64                   // requests served by a warm connection
	misses int64                   // connections opened
	peak   int                     // most connections open at once
	conns  map[*pgx.Conn]struct{}  // every open connection, to close at the end
}

type idleConn struct {
	tenant int
	conn   *pgx.Conn
}

func newWarmSet(max int, connect func(ctx context.Context, tenant int) (*pgx.Conn, error)) *warmSet {
	w := &warmSet{max: max, connect: connect, idle: map[int][]*list.Element{}, conns: map[*pgx.Conn]struct{}{}}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// acquire returns a connection logged in as tenant's role.
func (w *warmSet) acquire(ctx context.Context, tenant int) (*pgx.Conn, error) {
	w.mu.Lock()
	var evict *pgx.Conn
	for {
		if els := w.idle[tenant]; len(els) > 0 {
			el := els[len(els)-1]
			w.removeIdle(el)
			w.hits++
			w.mu.Unlock()
			return el.Value.(idleConn).conn, nil
		}
		if w.open < w.max {
			break
		}
		if el := w.lru.Back(); el != nil {
			w.removeIdle(el)
			evict = el.Value.(idleConn).conn
			delete(w.conns, evict)
			w.open--
			break
		}
		w.cond.Wait()
	}
	w.open++
	w.misses++
	w.peak = max(w.peak, w.open)
	w.mu.Unlock()
	if evict != nil {
		_ = evict.Close(ctx)
	}
	c, err := w.connect(ctx, tenant)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.open--
		w.cond.Signal()
		return nil, fmt.Errorf("connect as tenant %d: %w", tenant, err)
	}
	w.conns[c] = struct{}{}
	return c, nil
}

// release gives c back as idle, or closes it when broken.
func (w *warmSet) release(ctx context.Context, tenant int, c *pgx.Conn, broken bool) {
	w.mu.Lock()
	defer w.cond.Signal()
	defer w.mu.Unlock()
	if broken {
		w.open--
		delete(w.conns, c)
		_ = c.Close(ctx)
		return
	}
	el := w.lru.PushFront(idleConn{tenant: tenant, conn: c})
	w.idle[tenant] = append(w.idle[tenant], el)
}

func (w *warmSet) removeIdle(el *list.Element) {
	ic := el.Value.(idleConn)
	els := w.idle[ic.tenant]
	for i, e := range els {
		if e == el {
			els = append(els[:i], els[i+1:]...)
			break
		}
	}
	if len(els) == 0 {
		delete(w.idle, ic.tenant)
	} else {
		w.idle[ic.tenant] = els
	}
	w.lru.Remove(el)
}

// close closes every connection; no request may be running.
func (w *warmSet) close(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.conns {
		_ = c.Close(ctx)
	}
	w.conns = map[*pgx.Conn]struct{}{}
	w.idle = map[int][]*list.Element{}
	w.lru.Init()
	w.open = 0
}

// stats returns hits, misses (connections opened) and the peak of open connections.
func (w *warmSet) stats() (hits, misses int64, peak int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hits, w.misses, w.peak
}
