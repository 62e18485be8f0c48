package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/tenantkit/tenant/schema"
)

// migrate brings every tenant to the latest migration ("migrate [--parallel N]
// [--canary N] [--namespace NS]"): a progress bar on a terminal, a line a second
// otherwise, each failure as it happens, and a summary. Ctrl-C stops it cleanly: what
// was not done is reported pending, and the next run does it.
func migrate(ctx context.Context, env environment, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	var opts schema.RunOptions
	fs.IntVar(&opts.Parallel, "parallel", 0, "tenants migrated at once (default: half the pool)")
	fs.IntVar(&opts.Canary, "canary", 0, "migrate `N` tenants first, one at a time, and stop at the first failure")
	fs.StringVar(&opts.Namespace, "namespace", "", "only tenants named `NS`-*")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := open(ctx, env, false, false)
	if err != nil {
		return err
	}
	defer db.stop()
	a := db.app
	show := newProgress(env.stderr)
	opts.Progress = show.update
	res, err := a.Manager().Provisioner().MigrateAll(ctx, opts)
	show.finish()
	var runErr *schema.RunError
	if err != nil && !errors.As(err, &runErr) {
		return err
	}
	fmt.Fprintf(env.stdout, "%d migrated, %d already current, %d failed, %d locked, in %v\n",
		res.Changed, res.Current, res.Failed, res.Locked, time.Since(res.Started).Round(time.Millisecond))
	switch {
	case res.Interrupted:
		return fmt.Errorf("interrupted, %d pending: run migrate again to finish", res.Pending())
	case res.CanaryFailed:
		return fmt.Errorf("canary failed, %d pending: nothing more was migrated", res.Pending())
	case res.Failed+res.Locked > 0:
		return fmt.Errorf("%d of %d tenants were not migrated (locked ones were busy: run migrate again)",
			res.Failed+res.Locked, res.Total)
	}
	return nil
}

// progress shows a run's progress on w: a bar when w is a terminal, else a plain line
// at most once a second. Failures are printed as they come.
type progress struct {
	w    io.Writer
	bar  *progressbar.ProgressBar // nil when w is not a terminal
	mu   sync.Mutex
	last time.Time
	pr   schema.Progress
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("migrating"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("tenants"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
	}
	return p
}

// update is RunOptions.Progress.
func (p *progress) update(pr schema.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pr = pr
	if pr.Err != nil {
		if p.bar != nil {
			_ = p.bar.Clear()
		}
		fmt.Fprintf(p.w, "%s: %v\n", pr.Tenant, pr.Err)
	}
	if p.bar != nil {
		p.bar.ChangeMax(pr.Total)
		_ = p.bar.Set(pr.Done())
		return
	}
	if now := time.Now(); now.Sub(p.last) >= time.Second && pr.Done() > 0 {
		p.last = now
		p.line(now)
	}
}

// finish ends the bar, or prints the last line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	if p.pr.Done() > 0 {
		p.line(time.Now())
	}
}

func (p *progress) line(now time.Time) {
	fmt.Fprintf(p.w, "%s, %.0f tenants/s, eta %v\n", p.pr, p.pr.Rate(now), p.pr.ETA(now).Round(time.Second))
}
