package tenant

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// DefaultAfterCommitTimeout is Config.AfterCommitTimeout's default.
const DefaultAfterCommitTimeout = time.Minute

// hooks runs the functions requests register with tenantctx.AfterCommit, and knows
// which are still running, for Manager.Close.
type hooks struct {
	wg      sync.WaitGroup
	timeout time.Duration
	log     *slog.Logger
}

// afterResponse starts the attempt's after-commit functions when it succeeded, once
// its response is on the wire: a slow or stuck function never delays the answer of a
// committed request, nor fails it.
func (a *attempt) afterResponse(w http.ResponseWriter, status int) {
	fns := a.scope.AfterCommit()
	if len(fns) == 0 || !a.succeeded(status < http.StatusBadRequest) {
		return
	}
	h := a.m.hooks
	a.hooksStarted = true
	h.wg.Add(1) // counted before the answer leaves: whoever saw it can wait for them
	_ = http.NewResponseController(w).Flush()
	go func() {
		defer h.wg.Done()
		h.run(a.context(), a.name, fns)
	}()
}

// run calls fns in order with a context that is not cancelled with the request and
// ends after the timeout; a function that panics is logged and the next one runs.
func (h *hooks) run(ctx context.Context, name string, fns []func(context.Context)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.timeout)
	defer cancel()
	for _, fn := range fns {
		func() {
			defer func() {
				if p := recover(); p != nil {
					h.log.ErrorContext(ctx, "tenant: after-commit function panicked", slog.String("tenant", name), slog.Any("panic", p))
				}
			}()
			fn(ctx)
		}()
	}
}

// wait waits for the functions still running, at most the timeout; it reports whether
// they all ended.
func (h *hooks) wait() bool {
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(h.timeout):
		return false
	}
}
