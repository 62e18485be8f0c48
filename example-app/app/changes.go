package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/tenantkit/tenant/changes"
	"github.com/tenantkit/tenant/tenantctx"
)

// recentPerTenant is how many changes the page lists; recentTenants bounds the
// tenants remembered (an example's memory, not a store: a restart forgets them).
const (
	recentPerTenant = 5
	recentTenants   = 1000
)

// recent are the latest changes of each tenant, newest first.
type recent struct {
	mu     sync.Mutex
	byName map[string][]string
}

func (rc *recent) add(c changes.Change) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.byName == nil {
		rc.byName = map[string][]string{}
	}
	if _, ok := rc.byName[c.Schema]; !ok && len(rc.byName) >= recentTenants {
		for name := range rc.byName { // forget any one
			delete(rc.byName, name)
			break
		}
	}
	line := c.Op.String() + " " + c.Table + " " + strings.Join(c.Key, ",")
	list := append([]string{line}, rc.byName[c.Schema]...)
	rc.byName[c.Schema] = list[:min(len(list), recentPerTenant)]
}

func (rc *recent) of(name string) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string{}, rc.byName[name]...)
}

// Watch logs every change to the tenants' documents and counter (their migration
// tracks them) and keeps each tenant's latest for the page, until ctx ends. It
// returns once it listens.
func (a *App) Watch(ctx context.Context) error {
	sub, err := a.mgr.Subscribe(ctx, changes.Filter{})
	if err != nil {
		return err
	}
	go func() {
		defer sub.Close()
		for {
			select {
			case c, ok := <-sub.C:
				if !ok {
					return
				}
				a.recent.add(c)
				a.log.Info("change", slog.String("tenant", c.Schema), slog.String("table", c.Table),
					slog.String("op", c.Op.String()), slog.String("key", strings.Join(c.Key, ",")), slog.Bool("missed_before", c.Missed))
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}

// listChanges answers the tenant's recent changes, newest first, for the page to
// refresh its list.
func (a *App) listChanges(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.recent.of(tenantctx.Schema(r.Context())))
}
