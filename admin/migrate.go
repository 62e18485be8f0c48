package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/schema"
)

// Progress displays a run over many tenants (migrate).
type Progress interface {
	// Update is schema.RunOptions.Progress: the counts so far, after each tenant.
	Update(schema.Progress)
	// Finish ends the display, after the run.
	Finish()
}

// Lines is the default Progress: a plain line at most once a second and one at the
// end, with rate and ETA, and each failure on a line of its own, for logs and
// terminals alike.
func Lines(w io.Writer) Progress { return &lines{w: w} }

type lines struct {
	w    io.Writer
	mu   sync.Mutex
	last time.Time
	pr   schema.Progress
}

func (l *lines) Update(pr schema.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pr = pr
	if pr.Err != nil {
		fmt.Fprintf(l.w, "%s: %v\n", pr.Tenant, pr.Err)
	}
	if now := time.Now(); now.Sub(l.last) >= time.Second && pr.Done() > 0 {
		l.last = now
		l.line(now)
	}
}

func (l *lines) Finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pr.Done() > 0 {
		l.line(time.Now())
	}
}

func (l *lines) line(now time.Time) {
	fmt.Fprintf(l.w, "%s, %.0f tenants/s, eta %v\n", l.pr, l.pr.Rate(now), l.pr.ETA(now).Round(time.Second))
}

// migrate runs MigrateAll ("migrate [--parallel N] [--canary N] [--namespace NS]") and
// prints a summary. Ctrl-C (ctx ending) stops it cleanly: what was not done is
// reported pending, and the next run does it.
func (c Command) migrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	var opts schema.RunOptions
	fs.IntVar(&opts.Parallel, "parallel", 0, "tenants migrated at once (default: half the pool)")
	fs.IntVar(&opts.Canary, "canary", 0, "migrate `N` tenants first, one at a time, and stop at the first failure")
	fs.StringVar(&opts.Namespace, "namespace", "", "only tenants named `NS`-*")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("migrate: %w: %w", ErrUsage, err)
	}
	return c.with(ctx, func(mgr *tenant.Manager) error {
		newProgress := c.Progress
		if newProgress == nil {
			newProgress = Lines
		}
		show := newProgress(c.Stderr)
		opts.Progress = show.Update
		res, err := mgr.Provisioner().MigrateAll(ctx, opts)
		show.Finish()
		var runErr *schema.RunError
		if err != nil && !errors.As(err, &runErr) {
			return err
		}
		fmt.Fprintf(c.Stdout, "%d migrated, %d already current, %d failed, %d locked, in %v\n",
			res.Changed, res.Current, res.Failed, res.Locked, time.Since(res.Started).Round(time.Millisecond))
		switch {
		case res.Interrupted:
			return fmt.Errorf("interrupted, %d pending: run migrate again to finish: %w", res.Pending(), schema.ErrInterrupted)
		case res.CanaryFailed:
			return fmt.Errorf("canary failed, %d pending: nothing more was migrated: %w", res.Pending(), schema.ErrCanaryFailed)
		case res.Failed+res.Locked > 0:
			return fmt.Errorf("%d of %d tenants were not migrated (locked ones were busy: run migrate again): %w",
				res.Failed+res.Locked, res.Total, err)
		}
		return nil
	})
}
