package main

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// environment is where a run measured, for the report.
type environment struct {
	date     string // YYYY-MM-DD
	commit   string // short commit of the repository, "+changes" when it has uncommitted ones; "" unknown
	goVer    string
	platform string // GOOS/GOARCH
	cpus     int
	postgres string // server version
}

// describeEnvironment gathers the environment; what cannot be found stays empty.
func describeEnvironment(ctx context.Context, root, postgres string) environment {
	env := environment{
		date:     time.Now().Format(time.DateOnly),
		goVer:    runtime.Version(),
		platform: runtime.GOOS + "/" + runtime.GOARCH,
		cpus:     runtime.NumCPU(),
		postgres: postgres,
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		env.commit = strings.TrimSpace(string(out))
		if out, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
			env.commit += "+changes"
		}
	}
	return env
}
