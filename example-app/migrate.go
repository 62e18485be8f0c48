package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/tenantkit/tenant/admin"
	"github.com/tenantkit/tenant/schema"
)

// newProgress is migrate's admin.Progress: a bar when w is a terminal, else the
// library's plain lines (for logs).
func newProgress(w io.Writer) admin.Progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return admin.Lines(w)
	}
	return &bar{w: w, bar: progressbar.NewOptions(-1, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("migrating"),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("tenants"),
		progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())}
}

// bar draws the run's progress, and prints each failure above it as it comes.
type bar struct {
	w   io.Writer
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

func (b *bar) Update(pr schema.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pr.Err != nil {
		_ = b.bar.Clear()
		fmt.Fprintf(b.w, "%s: %v\n", pr.Tenant, pr.Err)
	}
	b.bar.ChangeMax(pr.Total)
	_ = b.bar.Set(pr.Done())
}

func (b *bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.bar.Finish()
}
