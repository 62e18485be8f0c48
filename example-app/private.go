package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/internal/pgserver"
)

// demoDatabase is the database the private server holds for the app.
const demoDatabase = "tenant_example"

// ownerFile, in DATA_DIR, holds the process id of the serve that owns the private
// server: the one that stops it on Ctrl-C. A serve killed with SIGKILL leaves both the
// server and this file behind; the next serve finds the process gone and takes the
// server over, instead of joining it and promising a Ctrl-C that would not stop it.
const ownerFile = "serve.pid"

// private is the private PostgreSQL as open found or started it.
type private struct {
	dsn  string
	note string // what Ctrl-C stops, for serve's banner
	stop func() // stops the server when this process owns it
}

func dataDir(env environment) string {
	if dir := env.getenv("DATA_DIR"); dir != "" {
		return dir
	}
	return ".data"
}

// startPrivate starts the private server under DATA_DIR, or joins the one running
// there. A serve owns the server it starts, and one whose owner is gone; a command
// stops only a server it started itself.
func startPrivate(ctx context.Context, env environment, serving bool) (*private, error) {
	dir := dataDir(env)
	pgDir := filepath.Join(dir, "postgres")
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: pgDir})
	if errors.Is(err, pgserver.ErrNoBinaries) {
		return nil, fmt.Errorf("no DATABASE_URL and no PostgreSQL server binaries: %s", pgserver.InstallHint)
	}
	if err != nil {
		return nil, err
	}
	p := &private{note: "Ctrl-C stops the app and its PostgreSQL"}
	owned := !srv.Attached()
	if srv.Attached() {
		if pid, alive := owner(dir); alive {
			p.note = fmt.Sprintf("Ctrl-C stops the app; its PostgreSQL belongs to the serve running as process %d, which stops it", pid)
		} else if serving {
			srv.TakeOver()
			owned = true
			p.note = fmt.Sprintf("PostgreSQL under %s was left running by a serve that did not stop (killed?); this one took it over, and Ctrl-C stops the app and its PostgreSQL", pgDir)
		}
	}
	if owned && serving {
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			_ = srv.Stop()
			return nil, fmt.Errorf("record the server's owner: %w", err)
		}
	}
	p.stop = func() {
		if !owned {
			return
		}
		if err := srv.Stop(); err != nil {
			fmt.Fprintf(env.stderr, "example-app: stopping PostgreSQL: %v\n", err)
		}
		if serving {
			_ = os.Remove(filepath.Join(dir, ownerFile))
		}
	}
	if err := createDatabase(ctx, srv.URL, demoDatabase); err != nil {
		p.stop()
		return nil, err
	}
	p.dsn = withDatabase(srv.URL, demoDatabase)
	return p, nil
}

// owner returns the process id in DATA_DIR's owner file, and whether that process is
// alive and an example-app: after a reboot, or long after a kill, the id may belong to
// an unrelated process, which owns nothing.
func owner(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err = syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return pid, false
	}
	// Where /proc tells the process's command (Linux), it must be this program: one
	// named example-app (make run's binary, go run's), or this very executable,
	// whatever its name.
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		return pid, strings.HasPrefix(filepath.Base(argv0), "example-app") || sameExecutable(pid)
	}
	return pid, true
}

// sameExecutable reports whether process pid runs the executable this process runs.
func sameExecutable(pid int) bool {
	self, err := os.Executable()
	if err != nil {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && exe == self
}

// stopPrivate is the stop command: it stops the private server under DATA_DIR, left
// running by a serve that was killed (DATABASE_URL plays no part). It refuses while the serve that owns the server
// runs: that serve stops it on Ctrl-C, and would fail its requests meanwhile.
func stopPrivate(ctx context.Context, env environment) error {
	dir := dataDir(env)
	pgDir := filepath.Join(dir, "postgres")
	if pid, alive := owner(dir); alive && pgserver.Running(pgDir) {
		return fmt.Errorf("stop: the serve running as process %d owns the PostgreSQL under %s; stop that serve (Ctrl-C, or kill %d) and it stops its PostgreSQL", pid, pgDir, pid)
	}
	stopped, err := pgserver.StopDir(ctx, pgDir)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	_ = os.Remove(filepath.Join(dir, ownerFile))
	if !stopped {
		fmt.Fprintf(env.stdout, "no private PostgreSQL running under %s\n", pgDir)
		return nil
	}
	fmt.Fprintf(env.stdout, "stopped the private PostgreSQL under %s\n", pgDir)
	return nil
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		return err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

func withDatabase(url, db string) string {
	cfg, _ := pgx.ParseConfig(url)
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, db)
}
