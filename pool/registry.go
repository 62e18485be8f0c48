package pool

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrClosed is returned by Registry.Get after Close.
var ErrClosed = errors.New("pool: registry is closed")

// Registry keeps one pool per DSN (the exact string), made on first use with the
// Registry's options and reused after. It is safe for concurrent use.
type Registry struct {
	opts []Option
	log  *slog.Logger // set once, by NewRegistry

	mu     sync.Mutex
	pools  map[string]*entry
	closed bool
}

// entry is one DSN's pool; ready closes when New has returned.
type entry struct {
	ready chan struct{}
	pool  *pgxpool.Pool
	err   error
}

// NewRegistry returns an empty Registry whose pools New makes with opts. It logs
// to WithLogger's logger, if one is among opts.
func NewRegistry(opts ...Option) *Registry {
	log := apply(opts).log
	if log == nil {
		log = slog.Default()
	}
	return &Registry{opts: opts, log: log, pools: map[string]*entry{}}
}

// Get returns the pool for dsn, making it on first use. Concurrent first calls for
// one DSN share a single New. A failed New is not remembered: the next Get tries again.
func (r *Registry) Get(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	e, ok := r.pools[dsn]
	if !ok {
		e = &entry{ready: make(chan struct{})}
		r.pools[dsn] = e
		r.mu.Unlock()
		e.pool, e.err = New(ctx, dsn, r.opts...)
		if e.err != nil {
			r.mu.Lock()
			if r.pools[dsn] == e {
				delete(r.pools, dsn)
			}
			r.mu.Unlock()
		} else {
			r.log.InfoContext(ctx, "pool created", slog.String("dsn", Redact(dsn)))
		}
		close(e.ready)
		return e.pool, e.err
	}
	r.mu.Unlock()
	select {
	case <-e.ready:
		return e.pool, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Invalidate closes dsn's pool and forgets it; the next Get makes a new one. It
// reports whether there was a pool. Like pgxpool.Pool.Close it waits for acquired
// connections to be released.
func (r *Registry) Invalidate(dsn string) bool {
	r.mu.Lock()
	e, ok := r.pools[dsn]
	delete(r.pools, dsn)
	r.mu.Unlock()
	if !ok {
		return false
	}
	<-e.ready
	if e.pool == nil {
		return false
	}
	e.pool.Close()
	r.log.Info("pool invalidated", slog.String("dsn", Redact(dsn)))
	return true
}

// Close closes every pool; Get fails with ErrClosed afterwards.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	pools := r.pools
	r.pools = map[string]*entry{}
	r.mu.Unlock()
	for _, e := range pools {
		<-e.ready
		if e.pool != nil {
			e.pool.Close()
		}
	}
}
