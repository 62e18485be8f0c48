// Package bouncer starts a private PgBouncer in front of a PostgreSQL server, for the
// tests that prove the lifecycle is correct behind it.
package bouncer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/internal/pgserver"
)

// ErrNotInstalled means no pgbouncer binary is on PATH (Debian: apt-get install pgbouncer).
var ErrNotInstalled = errors.New("bouncer: pgbouncer is not installed (apt-get install pgbouncer)")

// Bouncer is a running PgBouncer owned by this process.
type Bouncer struct {
	// Host and Port are where clients connect.
	Host string
	Port int
	dir  string
	cmd  *exec.Cmd
}

// Start runs PgBouncer in the given pool mode ("transaction", "session") with
// poolSize server connections, serving upstream's database under the same name.
// Clients log in as upstream's user without a password.
func Start(ctx context.Context, upstream, mode string, poolSize int) (*Bouncer, error) {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		return nil, ErrNotInstalled
	}
	up, err := pgx.ParseConfig(upstream)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tenant-pgbouncer-")
	if err != nil {
		return nil, err
	}
	b := &Bouncer{Host: "127.0.0.1", dir: dir}
	if b.Port, err = pgserver.FreePort(); err != nil {
		b.cleanup()
		return nil, err
	}
	server := fmt.Sprintf("host=%s port=%d dbname=%s user=%s", up.Host, up.Port, up.Database, up.User)
	if up.Password != "" {
		server += " password=" + up.Password
	}
	conf := fmt.Sprintf(`[databases]
%s = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = %s
default_pool_size = %d
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`, up.Database, server, b.Port, filepath.Join(dir, "users.txt"), mode, poolSize,
		filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	users := fmt.Sprintf("%q \"\"\n", up.User)
	for file, content := range map[string]string{"pgbouncer.ini": conf, "users.txt": users} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o600); err != nil {
			b.cleanup()
			return nil, fmt.Errorf("bouncer: %w", err)
		}
	}
	b.cmd = exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	b.cmd.Dir = dir
	if os.Geteuid() == 0 { // PgBouncer refuses to run as root
		cred, err := pgserver.PostgresCredential()
		if err != nil {
			b.cleanup()
			return nil, err
		}
		if err := chownAll(dir, cred); err != nil {
			b.cleanup()
			return nil, err
		}
		b.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := b.cmd.Start(); err != nil {
		b.cleanup()
		return nil, fmt.Errorf("bouncer: start: %w", err)
	}
	if err := b.waitReady(ctx); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
		_ = b.Stop()
		return nil, fmt.Errorf("bouncer: not ready: %w\n%s", err, log)
	}
	return b, nil
}

// URL returns a connection string for database db through the bouncer.
func (b *Bouncer) URL(user, db string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", user, b.Host, b.Port, db)
}

// Stop ends PgBouncer and removes its files.
func (b *Bouncer) Stop() error {
	defer b.cleanup()
	if b.cmd == nil || b.cmd.Process == nil {
		return nil
	}
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		return errors.New("bouncer: killed after 10 s")
	}
}

func (b *Bouncer) cleanup() { _ = os.RemoveAll(b.dir) }

func (b *Bouncer) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(b.Host, strconv.Itoa(b.Port)), time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func chownAll(dir string, cred *syscall.Credential) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, int(cred.Uid), int(cred.Gid))
	})
}
