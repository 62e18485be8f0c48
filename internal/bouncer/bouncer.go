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
	return StartWith(ctx, upstream, Options{Mode: mode, PoolSize: poolSize})
}

// Options configures StartWith. The zero AuthUser gives Start's setup: trust, and
// every server connection logs in as upstream's user.
type Options struct {
	Mode     string // pool_mode: "transaction" or "session"
	PoolSize int    // default_pool_size: server connections per (database, user) pool

	// AuthUser, when set, makes each client's user the server user, looked up with
	// AuthQuery (run as AuthUser, whose password AuthPassword is the one auth_file
	// holds), and AuthType checks the client's password: "scram-sha-256", "md5".
	AuthUser, AuthPassword, AuthQuery, AuthType string

	// Settings are more [pgbouncer] lines, "name = value" (max_db_connections,
	// server_idle_timeout, admin_users).
	Settings []string
}

// StartWith runs PgBouncer configured by o, serving upstream's database under the
// same name.
func StartWith(ctx context.Context, upstream string, o Options) (*Bouncer, error) {
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
	server := fmt.Sprintf("host=%s port=%d dbname=%s", up.Host, up.Port, up.Database)
	authType, users := "trust", fmt.Sprintf("%q \"\"\n", up.User)
	auth := ""
	if o.AuthUser == "" {
		server += " user=" + up.User
		if up.Password != "" {
			server += " password=" + up.Password
		}
	} else {
		authType, users = o.AuthType, fmt.Sprintf("%q %q\n", o.AuthUser, o.AuthPassword)
		auth = fmt.Sprintf("auth_user = %s\nauth_query = %s\n", o.AuthUser, o.AuthQuery)
	}
	conf := fmt.Sprintf(`[databases]
%s = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = %s
auth_file = %s
%spool_mode = %s
default_pool_size = %d
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`, up.Database, server, b.Port, authType, filepath.Join(dir, "users.txt"), auth, o.Mode, o.PoolSize,
		filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	for _, s := range o.Settings {
		conf += s + "\n"
	}
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

// Log returns what PgBouncer has logged so far (closed and evicted server connections).
func (b *Bouncer) Log() string {
	log, _ := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
	return string(log)
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
