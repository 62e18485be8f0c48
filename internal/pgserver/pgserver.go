// Package pgserver starts a private, throwaway PostgreSQL cluster from the server
// binaries installed on the machine. The test harness uses it when no server is
// reachable, and `make run` uses it for the example app's demo database.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoBinaries means no initdb/pg_ctl was found on PATH or under /usr/lib/postgresql.
var ErrNoBinaries = errors.New("pgserver: PostgreSQL server binaries (initdb, pg_ctl) not found")

// InstallHint says how to get the server binaries; callers print it next to ErrNoBinaries.
const InstallHint = "install the PostgreSQL server (Debian/Ubuntu: sudo apt-get install postgresql; macOS: brew install postgresql)"

// Server is a running cluster owned by this process.
type Server struct {
	// URL connects as the superuser "postgres" to database "postgres" over TCP.
	URL string
	// Dir is the data directory; the Unix socket lives there too.
	Dir string
	// Port is the TCP port on 127.0.0.1.
	Port int

	bin      string
	opts     string // the server's command-line options, for Restart
	cred     *syscall.Credential
	temp     bool
	attached bool // found running in Dir: another process owns it, Stop leaves it alone
}

// Options configures Start. The zero value makes a temporary cluster that Stop removes.
type Options struct {
	// Dir is the data directory. Empty: a new temporary directory, removed by Stop.
	// A directory that already holds a cluster is reused (its data kept).
	Dir string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// Settings are more server settings, "name=value", applied after the defaults
	// (fsync, synchronous_commit and full_page_writes off: fast, not crash-safe), so
	// they may override them: "synchronous_commit=on" makes a commit survive a crash
	// of the server (Restart in immediate mode), though not one of the machine.
	Settings []string
}

// FindBinaries returns the directory holding initdb and pg_ctl: PATH first, then the
// newest /usr/lib/postgresql/*/bin (Debian keeps the server binaries off PATH).
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start initialises (when needed) and starts a cluster, waiting until it accepts
// connections. initdb refuses to run as root, so as root the cluster runs as the
// "postgres" OS user. When Dir holds a cluster another process already runs, Start
// returns it, and Stop will leave it running.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, Dir: opts.Dir, Port: opts.Port}
	if os.Geteuid() == 0 {
		if s.cred, err = PostgresCredential(); err != nil {
			return nil, err
		}
	}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "tenant-pg-"); err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
		s.temp = true
	} else if s.Dir, err = filepath.Abs(s.Dir); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	} else if port, ok := runningPort(s.Dir); ok {
		s.Port, s.attached = port, true
		s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		return s, nil
	}
	if err := s.prepareDir(); err != nil {
		s.cleanup()
		return nil, err
	}
	if s.Port == 0 {
		if s.Port, err = FreePort(); err != nil {
			s.cleanup()
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "PG_VERSION")); err != nil {
		if err := s.run(ctx, "initdb", "-D", s.Dir, "-U", "postgres", "-A", "trust", "-E", "UTF8",
			"--locale=C", "--no-sync"); err != nil {
			s.cleanup()
			return nil, err
		}
	}
	// Durability is not wanted here: fsync off makes tests and the demo fast.
	s.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
		s.Port, s.Dir)
	for _, setting := range opts.Settings {
		s.opts += " -c " + setting
	}
	if err := s.start(ctx); err != nil {
		s.cleanup()
		return nil, err
	}
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	return s.run(ctx, "pg_ctl", "-D", s.Dir, "-l", filepath.Join(s.Dir, "server.log"), "-o", s.opts, "-w", "-t", "60", "start")
}

// ErrAttached means the cluster belongs to another process: Restart leaves it alone.
var ErrAttached = errors.New("pgserver: the cluster was started by another process")

// Restart stops the cluster and starts it again on the same port, waiting until it
// accepts connections. mode is pg_ctl's shutdown mode: "fast" ends every session and
// checkpoints; "immediate" kills the server like a crash, and the start recovers from
// the write-ahead log.
func (s *Server) Restart(ctx context.Context, mode string) error {
	if s.attached || s.opts == "" {
		return ErrAttached
	}
	if mode != "smart" && mode != "fast" && mode != "immediate" {
		return fmt.Errorf("pgserver: shutdown mode %q: want smart, fast or immediate", mode)
	}
	if err := s.run(ctx, "pg_ctl", "-D", s.Dir, "-m", mode, "-w", "stop"); err != nil {
		return err
	}
	return s.start(ctx)
}

// Attached reports whether Start found the cluster already running in Dir, started
// by another process: Stop then leaves it running.
func (s *Server) Attached() bool { return s.attached }

// TakeOver makes Stop shut down a cluster Start found running, for a caller that knows
// the process that started it is gone (killed, so it never stopped it). Restart still
// refuses: the cluster's command-line options are unknown here.
func (s *Server) TakeOver() { s.attached, s.temp = false, false }

// Running reports whether a live server holds the data directory dir.
func Running(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	_, ok := runningPort(abs)
	return ok
}

// StopDir shuts down (fast mode) the cluster running in dir, whoever started it, and
// reports whether one was running.
func StopDir(ctx context.Context, dir string) (bool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, fmt.Errorf("pgserver: %w", err)
	}
	if _, ok := runningPort(abs); !ok {
		return false, nil
	}
	bin, err := FindBinaries()
	if err != nil {
		return true, err
	}
	s := &Server{bin: bin, Dir: abs}
	if os.Geteuid() == 0 {
		if s.cred, err = PostgresCredential(); err != nil {
			return true, err
		}
	}
	return true, s.run(ctx, "pg_ctl", "-D", abs, "-m", "fast", "-w", "stop")
}

// Stop shuts the cluster down (fast mode) and removes a temporary data directory.
func (s *Server) Stop() error {
	if s.attached {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.run(ctx, "pg_ctl", "-D", s.Dir, "-m", "fast", "-w", "stop")
	s.cleanup()
	return err
}

func (s *Server) cleanup() {
	if s.temp {
		_ = os.RemoveAll(s.Dir)
	}
}

func (s *Server) prepareDir() error {
	// Missing parents are made traversable: as root, the cluster runs as "postgres",
	// which must reach the data directory (the directory itself stays private).
	if err := os.MkdirAll(filepath.Dir(s.Dir), 0o755); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if err := os.Mkdir(s.Dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("pgserver: %w", err)
	}
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(s.Dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("pgserver: chown data directory: %w", err)
	}
	return nil
}

func (s *Server) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir // the postgres user may not be allowed into our working directory
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if s.cred != nil && errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("pgserver: %s: %w: the postgres OS user cannot enter %s; make its parent directories traversable (chmod o+x)", name, err, s.Dir)
		}
		return fmt.Errorf("pgserver: %s: %w: %s", name, err, strings.TrimSpace(lastLines(out.String(), 8)))
	}
	return nil
}

// runningPort reads the port of a live postmaster from dir/postmaster.pid.
func runningPort(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, false // stale lock file: pg_ctl start will clean it up
	}
	return port, true
}

// PostgresCredential is the "postgres" OS user, for server processes that refuse to
// run as root (initdb, postgres, pgbouncer).
func PostgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root needs a \"postgres\" OS user for initdb: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
