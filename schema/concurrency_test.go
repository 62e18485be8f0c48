package schema_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

func TestEnsureConcurrentGoroutines(t *testing.T) {
	ctx := context.Background()
	setup(t)
	pool := testdb.PoolFor(t, testdb.URL(t)+"&pool_max_conns=21")
	name := tenantName(t, pool)

	const n = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		// A Provisioner each, so nothing in-process shares a cache or a lock.
		p := newProvisioner(t, pool, schema.Config{})
		wg.Go(func() {
			<-start
			errs[i] = p.Ensure(ctx, name)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "goroutine %d", i)
	}
	assert.Equal(t, 1, count(t, pool, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name))
	assert.Equal(t, map[int]int{1: 1, 2: 1}, runs(t, pool, name), "each migration ran once")
}

const childSchemaEnv = "TENANT_TEST_ENSURE_SCHEMA"

// TestEnsureTwoProcesses re-executes this test binary twice; both children wait on
// stdin, then call Ensure for the same new schema at the same moment.
func TestEnsureTwoProcesses(t *testing.T) {
	pool := setup(t)
	name := tenantName(t, pool)

	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
		log   *strings.Builder
	}
	var children []child
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnsureChildProcess$")
		cmd.Env = append(os.Environ(), testdb.ChildEnv+"="+testdb.URL(t), childSchemaEnv+"="+name)
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		log := &strings.Builder{}
		cmd.Stderr = log
		require.NoError(t, cmd.Start())
		children = append(children, child{cmd, stdin, bufio.NewReader(stdout), log})
	}
	for _, c := range children {
		line, err := c.out.ReadString('\n')
		require.NoError(t, err, "child stderr: %s", c.log)
		require.Equal(t, "ready\n", line)
	}
	for _, c := range children {
		_, err := io.WriteString(c.stdin, "go\n")
		require.NoError(t, err)
	}
	for _, c := range children {
		rest, _ := io.ReadAll(c.out)
		require.NoError(t, c.cmd.Wait(), "child output: %s %s", rest, c.log)
		assert.Contains(t, string(rest), "ensured")
	}
	assert.Equal(t, map[int]int{1: 1, 2: 1}, runs(t, pool, name), "each migration ran once across processes")
	assert.Equal(t, 2, count(t, pool, `SELECT count(*) FROM "`+name+`".tenant_migrations`))
}

// TestEnsureChildProcess is the child side of TestEnsureTwoProcesses; run directly it
// has nothing to do.
func TestEnsureChildProcess(t *testing.T) {
	name := os.Getenv(childSchemaEnv)
	if name == "" {
		return
	}
	pool, err := pgxpool.New(context.Background(), testdb.URL(t))
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, pool.Ping(context.Background()))
	ps := make([]*schema.Provisioner, 5)
	for i := range ps {
		ps[i] = newProvisioner(t, pool, schema.Config{})
	}
	fmt.Println("ready")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "go\n", line)
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { assert.NoError(t, p.Ensure(context.Background(), name)) })
	}
	wg.Wait()
	fmt.Println("ensured")
}

// TestEnsureRetriesDDLRace makes a real race: another session creates the schema
// without our advisory lock, so our CREATE SCHEMA waits on the catalog's unique index
// and fails with 23505 once that session commits. The retry then finds the schema and,
// since this package did not create it, refuses it with ErrForeign (nothing is created
// in it). With a single attempt, the same race is the 23505 error.
func TestEnsureRetriesDDLRace(t *testing.T) {
	for _, tc := range []struct {
		attempts int
		wantErr  bool
	}{{attempts: 1, wantErr: true}, {attempts: 5, wantErr: false}} {
		t.Run(fmt.Sprintf("attempts=%d", tc.attempts), func(t *testing.T) {
			ctx := context.Background()
			pool := setup(t)
			name := tenantName(t, pool)
			p := newProvisioner(t, pool, schema.Config{Attempts: tc.attempts})
			require.NoError(t, p.EnsureShared(ctx))

			other, err := pool.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = other.Rollback(ctx) }()
			_, err = other.Exec(ctx, `CREATE SCHEMA "`+name+`"`)
			require.NoError(t, err)

			done := make(chan error, 1)
			go func() { done <- p.Ensure(ctx, name) }()
			require.Eventually(t, func() bool {
				return count(t, pool, `SELECT count(*) FROM pg_stat_activity
					WHERE wait_event_type = 'Lock' AND starts_with(query, $1)`, `CREATE SCHEMA "`+name+`"`) == 1
			}, 10*time.Second, 10*time.Millisecond, "our CREATE SCHEMA should wait on the other session")
			require.NoError(t, other.Commit(ctx))

			err = <-done
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "23505")
				return
			}
			// The retry sees the other session's schema, which this package did not
			// create: it is refused, never taken over.
			require.ErrorIs(t, err, schema.ErrForeign)
			assert.Empty(t, runs(t, pool, name))
			assert.Zero(t, count(t, pool, `SELECT count(*) FROM pg_class WHERE relnamespace = $1::regnamespace`, name))
		})
	}
}
