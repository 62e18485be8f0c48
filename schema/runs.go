package schema

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrInterrupted is wrapped by the error of a run over many tenants whose context
// ended: the tenants it had not finished are pending, and running it again does them.
var ErrInterrupted = errors.New("interrupted")

// ErrCanaryFailed is wrapped by the error of a run whose canary failed: it stopped
// there, and the remaining tenants are pending.
var ErrCanaryFailed = errors.New("canary failed")

// RunOptions configure a run over many tenants (MigrateAll, ForEach). The zero value
// runs every tenant, with the default parallelism, no canary and no progress reports.
type RunOptions struct {
	// Namespace limits the run to "namespace-*" tenants. Default: all tenants.
	Namespace string
	// Parallel is how many tenants are worked on at once, each on a connection of its
	// own. Default: half the pool's MaxConns (at least 1) when the Provisioner's DB is
	// a *pgxpool.Pool, so requests keep the other half; otherwise 1.
	Parallel int
	// Canary, when positive, runs that many tenants first, one at a time, and stops
	// the run at the first that fails (ErrCanaryFailed); the rest run only when all of
	// them succeed. Default 0: no canary.
	Canary int
	// Progress, when set, is called with the counts so far: once when the run starts,
	// then after each tenant, one call at a time. It must return quickly: the run waits
	// for it.
	Progress func(Progress)
}

// Progress counts what a run over many tenants has done so far.
type Progress struct {
	// Total is the number of tenants in the run.
	Total int
	// Changed counts tenants that had work done: migrations applied (MigrateAll), the
	// function run (ForEach).
	Changed int
	// Current counts tenants with nothing to do: already at the latest migration, or
	// dropped since the run began.
	Current int
	// Failed counts tenants whose work failed; the run went on with the others.
	Failed int
	// Locked counts tenants skipped because their requests kept them busy for longer
	// than Config.LockTimeout (ErrLocked).
	Locked int
	// Started is when the run began.
	Started time.Time
	// Tenant is the tenant just finished, and Err its error (nil when it succeeded);
	// empty in the first report.
	Tenant string
	Err    error
}

// Done is the number of tenants finished, whatever the outcome.
func (p Progress) Done() int { return p.Changed + p.Current + p.Failed + p.Locked }

// Pending is the number of tenants not finished.
func (p Progress) Pending() int { return p.Total - p.Done() }

// Rate is the tenants finished per second since Started, as of now.
func (p Progress) Rate(now time.Time) float64 {
	elapsed := now.Sub(p.Started).Seconds()
	if elapsed <= 0 {
		return 0
	}
	return float64(p.Done()) / elapsed
}

// ETA estimates the time left at the rate so far; 0 before any tenant finished.
func (p Progress) ETA(now time.Time) time.Duration {
	rate := p.Rate(now)
	if rate == 0 {
		return 0
	}
	return time.Duration(float64(p.Pending()) / rate * float64(time.Second))
}

// String is a one-line summary: "120/1000 done: 20 changed, 100 current, 0 failed, 0
// locked".
func (p Progress) String() string {
	return fmt.Sprintf("%d/%d done: %d changed, %d current, %d failed, %d locked",
		p.Done(), p.Total, p.Changed, p.Current, p.Failed, p.Locked)
}

// Result is what a run over many tenants did.
type Result struct {
	Progress
	// Failures holds the error of each tenant that failed or was locked, by name.
	Failures map[string]error
	// Interrupted: the context ended, and Pending tenants were not finished.
	Interrupted bool
	// CanaryFailed: a canary tenant failed, and Pending tenants were not run.
	CanaryFailed bool
}

// RunError is the error of a run over many tenants that did not bring each one
// through: some failed or were locked, it was interrupted, or its canary failed. It
// unwraps to ErrInterrupted or ErrCanaryFailed and to each tenant's error, so
// errors.Is finds ErrMigrationFailed, ErrLocked and the like.
type RunError struct {
	Result Result
}

// Error summarizes: "interrupted, 880 pending; 2 failed, 1 locked (first: acme: ...)".
func (e *RunError) Error() string {
	r := e.Result
	var parts []string
	switch {
	case r.Interrupted:
		parts = append(parts, fmt.Sprintf("interrupted, %d pending", r.Pending()))
	case r.CanaryFailed:
		parts = append(parts, fmt.Sprintf("canary failed, %d pending", r.Pending()))
	}
	if r.Failed > 0 || r.Locked > 0 {
		parts = append(parts, fmt.Sprintf("%d failed, %d locked", r.Failed, r.Locked))
	}
	msg := "schema: " + strings.Join(parts, "; ")
	if names := e.failed(); len(names) > 0 {
		msg += fmt.Sprintf(" (first: %s: %v)", names[0], r.Failures[names[0]])
	}
	return msg
}

// Unwrap returns the run's sentinel and each tenant's error, in name order.
func (e *RunError) Unwrap() []error {
	var errs []error
	switch {
	case e.Result.Interrupted:
		errs = append(errs, ErrInterrupted)
	case e.Result.CanaryFailed:
		errs = append(errs, ErrCanaryFailed)
	}
	for _, name := range e.failed() {
		errs = append(errs, e.Result.Failures[name])
	}
	return errs
}

func (e *RunError) failed() []string {
	names := make([]string, 0, len(e.Result.Failures))
	for name := range e.Result.Failures {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// outcome is what one tenant's work came to.
type outcome int

const (
	changed outcome = iota
	current
	failed
	locked
	busy // another run holds the tenant: done again later, waiting for it
)

// work is one tenant's work in a run; wait says whether it may wait for another run
// that holds the tenant (otherwise it answers busy at once).
type work func(ctx context.Context, name string, wait bool) (outcome, error)

// run does do for each name in names, as RunOptions say, and counts alreadyCurrent
// more tenants (ones the plan found nothing to do for) as current. The canaries run
// first, one at a time; then the rest in parallel; then, waiting for them this time,
// those another run held.
func (p *Provisioner) run(ctx context.Context, opts RunOptions, names []string, alreadyCurrent int, do work) (Result, error) {
	res := Result{Progress: Progress{Total: len(names) + alreadyCurrent, Current: alreadyCurrent, Started: time.Now()},
		Failures: map[string]error{}}
	report := func(name string, o outcome, err error) {
		switch o {
		case changed:
			res.Changed++
		case current:
			res.Current++
		case failed:
			res.Failed++
			res.Failures[name] = err
		case locked:
			res.Locked++
			res.Failures[name] = err
		}
		res.Tenant, res.Err = name, err
		if opts.Progress != nil {
			opts.Progress(res.Progress)
		}
	}
	if opts.Progress != nil {
		opts.Progress(res.Progress)
	}

	canaries := names[:min(max(opts.Canary, 0), len(names))]
	for _, name := range canaries {
		o, err := do(ctx, name, true)
		if ctx.Err() != nil {
			break
		}
		report(name, o, err)
		if o == failed {
			res.CanaryFailed = true
			return p.finish(ctx, res)
		}
	}
	held := p.fanOut(ctx, opts, names[len(canaries):], false, do, report)
	p.fanOut(ctx, opts, held, true, do, report)
	return p.finish(ctx, res)
}

// finish returns res with its error.
func (p *Provisioner) finish(ctx context.Context, res Result) (Result, error) {
	res.Tenant, res.Err = "", nil
	res.Interrupted = ctx.Err() != nil && res.Pending() > 0
	if res.Interrupted || res.CanaryFailed || len(res.Failures) > 0 {
		return res, &RunError{Result: res}
	}
	return res, nil
}

// fanOut runs do for names on opts.Parallel workers and reports each outcome from the
// calling goroutine. It returns the names another run held (busy), and stops taking
// names when ctx ends: work cut short by it is neither reported nor failed.
func (p *Provisioner) fanOut(ctx context.Context, opts RunOptions, names []string, wait bool, do work,
	report func(string, outcome, error)) (held []string) {
	type done struct {
		name string
		o    outcome
		err  error
	}
	jobs := make(chan string)
	results := make(chan done)
	var wg sync.WaitGroup
	for range min(p.parallel(opts), len(names)) {
		wg.Go(func() {
			for name := range jobs {
				o, err := do(ctx, name, wait)
				results <- done{name, o, err}
			}
		})
	}
	go func() {
		defer close(jobs)
		for _, name := range names {
			select {
			case jobs <- name:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	for d := range results {
		switch {
		case ctx.Err() != nil && d.err != nil: // cut short: pending, not failed
		case d.o == busy:
			held = append(held, d.name)
		default:
			report(d.name, d.o, d.err)
		}
	}
	return held
}

// parallel is opts.Parallel or its default.
func (p *Provisioner) parallel(opts RunOptions) int {
	if opts.Parallel > 0 {
		return opts.Parallel
	}
	if pool, ok := p.db.(*pgxpool.Pool); ok {
		return max(1, int(pool.Config().MaxConns)/2)
	}
	return 1
}
