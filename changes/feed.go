package changes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/schema"
)

// Buffer is how many changes a subscription holds for its reader, and Patience how
// long, at most, the Feed waits for room in a full one in any second (a burst from one
// large statement, read as it comes, needs little). A reader slower than that misses
// changes rather than slow anyone: the Feed stops waiting for it until it has room
// again, and its next change says Missed; other subscriptions are delayed by a
// reader's Patience per second at most. Requests never wait for the Feed (PostgreSQL
// queues the signals, up to 8 GB, for a listener that is itself behind).
const (
	Buffer   = 1024
	Patience = 100 * time.Millisecond
)

// ErrClosed is returned by Subscribe on a Feed that was closed.
var ErrClosed = errors.New("changes: the feed is closed")

// Feed listens for change signals on a connection of its own, opened at the first
// Subscribe and kept, made again when lost, until Close.
type Feed struct {
	config *pgx.ConnConfig
	log    *slog.Logger

	mu        sync.Mutex
	subs      map[*Subscription]struct{}
	started   bool
	closed    bool
	listening chan struct{} // closed while the connection listens
	attempted chan struct{} // closed when an attempt to listen failed, with lastErr
	lastErr   error
	stop      context.CancelFunc
	done      chan struct{}
}

// NewFeed returns a Feed that connects with config (a copy is kept) when first asked
// to; log gets lost connections and signals it cannot read (nil: slog.Default()).
func NewFeed(config *pgx.ConnConfig, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.Default()
	}
	return &Feed{
		config:    config.Copy(),
		log:       log,
		subs:      map[*Subscription]struct{}{},
		listening: make(chan struct{}),
		attempted: make(chan struct{}),
	}
}

// Subscription is one subscriber's changes, in commit order, in C until Close.
type Subscription struct {
	// C receives the changes the Filter matches. It is closed by Close and when the
	// Feed closes.
	C      <-chan Change
	c      chan Change
	filter Filter
	feed   *Feed
	missed bool // changes were dropped since the last one delivered
	// patience is how long the Feed may still wait for this reader: it grows back by
	// Patience a second, up to Patience.
	patience time.Duration
	since    time.Time // when patience was last topped up
}

// Subscribe returns a subscription to the changes f matches, once the Feed listens:
// every change committed after Subscribe returns is delivered (or counted as Missed).
// It fails when the Feed cannot listen (the error of its last attempt) or ctx ends
// first.
func (f *Feed) Subscribe(ctx context.Context, filter Filter) (*Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := make(chan Change, Buffer)
	s := &Subscription{C: c, c: c, filter: filter, feed: f, patience: Patience, since: time.Now()}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, ErrClosed
	}
	f.subs[s] = struct{}{}
	if !f.started {
		f.started = true
		loopCtx, stop := context.WithCancel(context.Background())
		f.stop, f.done = stop, make(chan struct{})
		go f.run(loopCtx)
	}
	listening, attempted := f.listening, f.attempted
	f.mu.Unlock()

	select {
	case <-listening:
		return s, nil
	case <-attempted:
		f.mu.Lock()
		err := f.lastErr
		f.mu.Unlock()
		s.Close()
		return nil, fmt.Errorf("changes: listen: %w", err)
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

// Close ends the subscription and closes C. It may be called more than once.
func (s *Subscription) Close() {
	f := s.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		close(s.c)
	}
}

// Close stops listening and closes every subscription.
func (f *Feed) Close() {
	f.mu.Lock()
	f.closed = true
	stop, done := f.stop, f.done
	f.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		delete(f.subs, s)
		close(s.c)
	}
}

// run listens until ctx ends, connecting again (after a pause that grows to 5 s) when
// the connection fails or is lost.
func (f *Feed) run(ctx context.Context) {
	defer close(f.done)
	pause := 100 * time.Millisecond
	for {
		conn, err := f.listen(ctx)
		if err == nil {
			f.listened()
			pause = 100 * time.Millisecond
			err = f.receive(ctx, conn)
			_ = conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		f.failed(err)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return
		}
		pause = min(2*pause, 5*time.Second)
	}
}

func (f *Feed) listen(ctx context.Context) (*pgx.Conn, error) {
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(connectCtx, f.config)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(connectCtx, "LISTEN "+pgx.Identifier{schema.ChangesChannel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// listened marks the Feed listening, for Subscribe.
func (f *Feed) listened() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.listening)
}

// failed records why the Feed does not listen: waiting Subscribes get err, and every
// subscription's next change is marked Missed, since signals sent meanwhile are lost.
func (f *Feed) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.listening: // it was listening: the connection was lost
		f.log.Warn("changes: connection lost; listening again", slog.Any("error", err))
		f.listening = make(chan struct{})
	default:
		f.log.Warn("changes: cannot listen", slog.Any("error", err))
		f.lastErr = err
		close(f.attempted)
		f.attempted = make(chan struct{})
	}
	for s := range f.subs {
		s.missed = true
	}
}

// receive hands each signal's changes to the subscriptions until the connection or
// ctx ends.
func (f *Feed) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		changes, err := parse(n.Payload)
		if err != nil {
			f.log.Warn("changes: a signal was not understood", slog.Any("error", err))
			continue
		}
		f.deliver(changes)
	}
}

// deliver gives each change to the subscriptions it matches. A full subscription is
// waited for as long as its patience lasts, unless it already missed changes; then it
// drops the change, and its next delivered change is marked Missed.
func (f *Feed) deliver(changes []Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var timer *time.Timer
	for _, c := range changes {
		for s := range f.subs {
			if !s.filter.matches(c) {
				continue
			}
			c.Missed = s.missed
			select {
			case s.c <- c:
				s.missed = false
				continue
			default:
			}
			if s.missed || s.waitable() <= 0 {
				s.missed = true
				continue
			}
			if timer == nil {
				timer = time.NewTimer(s.patience)
				defer timer.Stop()
			} else {
				timer.Reset(s.patience)
			}
			start := time.Now()
			select {
			case s.c <- c:
			case <-timer.C:
				s.missed = true
			}
			s.patience -= time.Since(start)
		}
	}
}

// waitable tops the subscription's patience up for the time passed, and returns it.
func (s *Subscription) waitable() time.Duration {
	now := time.Now()
	s.patience = min(Patience, s.patience+now.Sub(s.since)*Patience/time.Second)
	s.since = now
	return s.patience
}
