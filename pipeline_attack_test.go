package tenant_test

// Attacks on the session's own pipelines: what a failed or refused round trip, a
// small statement cache and a refreshed binding leave for the next statement. Pools
// of one connection, so each request reuses the backend the previous one left.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/tenantctx"
)

// withStatementCache sets pgx's StatementCacheCapacity: the statements the session
// keeps prepared on each connection.
func withStatementCache(n int) []pool.Option {
	return []pool.Option{pool.WithConfig(func(c *pgxpool.Config) { c.ConnConfig.StatementCacheCapacity = n })}
}

// runCounted runs fn through Manager.Run and reports how many attempts it took.
// scanEach returns work that runs each statement with 7 as its argument and keeps the
// int each answers in *got, afresh at each attempt.
func scanEach(got *[]int, statements ...string) func(ctx context.Context, db tenantctx.DB) error {
	return func(ctx context.Context, db tenantctx.DB) error {
		*got = (*got)[:0]
		for _, sql := range statements {
			var v int
			if err := db.QueryRow(ctx, sql, 7).Scan(&v); err != nil {
				return err
			}
			*got = append(*got, v)
		}
		return nil
	}
}

func runCounted(e *env, name string, fn func(ctx context.Context, db tenantctx.DB) error) (attempts int, err error) {
	err = e.mgr.Run(context.Background(), name, func(ctx context.Context) error {
		attempts++
		return fn(ctx, tenantctx.Session(ctx))
	})
	return attempts, err
}

// A statement refused before it was sent (the connection busy with rows still open,
// or the call's context already done) must not take with it the closing of a
// statement evicted from the connection's cache: left prepared on the server but
// forgotten by the session, preparing it again later fails with 42P05 ("already
// exists") on every attempt, on that connection, for good.
func TestRefusedStatementKeepsEvictedStatementsToClose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse func(ctx context.Context, db tenantctx.DB) error
	}{
		{"connection busy with open rows", func(ctx context.Context, db tenantctx.DB) error {
			rows, err := db.Query(ctx, "SELECT $1::int + 10", 1)
			if err != nil {
				return err
			}
			_, err = db.Exec(ctx, "SELECT $1::int + 2", 1)
			assert.Error(t, err, "conn busy")
			var v int
			for rows.Next() {
				assert.NoError(t, rows.Scan(&v))
			}
			assert.Equal(t, 11, v)
			return rows.Err()
		}},
		{"context already done", func(ctx context.Context, db tenantctx.DB) error {
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			_, err := db.Exec(cancelled, "SELECT $1::int + 2", 1)
			assert.ErrorIs(t, err, context.Canceled)
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTenantName("rke")
			e := newEnvOn(t, testdb.URL(t), 1, withStatementCache(1), tenant.Config{Resolver: byHeader}, a)
			n, err := runCounted(e, a, func(ctx context.Context, db tenantctx.DB) error {
				if _, err := db.Exec(ctx, "SELECT $1::int", 1); err != nil { // prepared
					return err
				}
				if _, err := db.Exec(ctx, "SELECT $1::int + 1", 1); err != nil { // evicts the first
					return err
				}
				return tc.refuse(ctx, db)
			})
			require.NoError(t, err)
			require.Equal(t, 1, n)

			var got []int
			n, err = runCounted(e, a, scanEach(&got, "SELECT $1::int", "SELECT $1::int + 1", "SELECT $1::int + 10")) // each evicted once
			require.NoError(t, err)
			assert.Equal(t, []int{7, 8, 17}, got)
			assert.Equal(t, 1, n, "one attempt")
		})
	}
}

// A savepoint begun before the request's first statement is queued, and sent with that
// statement behind the begin. When the begin fails because a migration moved the
// tenant's version marker, the session asks admission again and begins anew: the
// SAVEPOINT must go with the new begin too. Lost, the statement ran outside the
// savepoint, and its ROLLBACK TO failed with 3B001 (no such savepoint), failing the
// whole transaction.
func TestSavepointSurvivesARefreshedBegin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context, db tenantctx.DB, owner string) error
	}{
		{"Exec with arguments", func(ctx context.Context, db tenantctx.DB, owner string) error {
			_, err := db.Exec(ctx, "INSERT INTO events (owner) VALUES ($1)", owner)
			return err
		}},
		{"Exec without arguments", func(ctx context.Context, db tenantctx.DB, owner string) error {
			_, err := db.Exec(ctx, "INSERT INTO events (owner) VALUES ('"+owner+"')")
			return err
		}},
		{"batch", func(ctx context.Context, db tenantctx.DB, owner string) error {
			b := &pgx.Batch{}
			b.Queue("INSERT INTO events (owner) VALUES ($1)", owner)
			return db.SendBatch(ctx, b).Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTenantName("ssr")
			e := newEnv(t, 1, tenant.Config{Resolver: byHeader})
			provisionAt(t, e, eventsV1, a)
			_, err := runCounted(e, a, func(ctx context.Context, db tenantctx.DB) error { return tc.write(ctx, db, "v1") })
			require.NoError(t, err) // admitted at v1
			provisionAt(t, e, eventsV2, a)

			n, err := runCounted(e, a, func(ctx context.Context, db tenantctx.DB) error {
				sp, err := db.Begin(ctx)
				if err != nil {
					return err
				}
				if err := tc.write(ctx, sp, "undone"); err != nil {
					return err
				}
				if err := sp.Rollback(ctx); err != nil {
					return err
				}
				return tc.write(ctx, db, "kept")
			})
			require.NoError(t, err)
			assert.Equal(t, 1, n)
			assert.Equal(t, 0, e.count(t, `SELECT count(*) FROM "`+a+`".events WHERE owner = 'undone'`))
			assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM "`+a+`".events WHERE owner = 'kept'`))
		})
	}
}

// A batch with more statements than the connection's cache holds. Those described
// first, in the batch's own transaction, were added to the cache one by one, so the
// later ones evicted the earlier before the batch ran: the batch then parsed them
// again under a name the server still had (42P05), and the request ran again. Every
// batch of a tenant new to the process (or after a migration) did that.
func TestBatchLargerThanTheStatementCache(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity int
		sql      []string
	}{
		{"three new statements, room for two", 2, []string{"SELECT $1::int + 1", "SELECT $1::int + 2", "SELECT $1::int + 3"}},
		{"two new statements, room for one", 1, []string{"SELECT $1::int + 1", "SELECT $1::int + 2"}},
		{"repeated ones, room for one", 1, []string{"SELECT $1::int + 1", "SELECT $1::int + 2", "SELECT $1::int + 1", "SELECT $1::int + 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTenantName("blc")
			e := newEnvOn(t, testdb.URL(t), 1, withStatementCache(tc.capacity), tenant.Config{Resolver: byHeader}, a)
			want := make([]int, len(tc.sql))
			for i, sql := range tc.sql {
				want[i] = 1 + int(sql[len(sql)-1]-'0')
			}
			for round := range 3 { // described, then known, then known and prepared as far as they fit
				var got []int
				n, err := runCounted(e, a, func(ctx context.Context, db tenantctx.DB) error {
					got = got[:0]
					b := &pgx.Batch{}
					for _, sql := range tc.sql {
						b.Queue(sql, 1).QueryRow(func(row pgx.Row) error {
							var v int
							err := row.Scan(&v)
							got = append(got, v)
							return err
						})
					}
					return db.SendBatch(ctx, b).Close()
				})
				require.NoError(t, err, "round %d", round)
				assert.Equal(t, want, got, "round %d", round)
				assert.Equal(t, 1, n, "round %d: one attempt", round)
			}
		})
	}
}

// A handler that points search_path at another tenant's schema fails at its end (the
// check), but a statement described meanwhile took the other schema's types, and the
// description was shared with the tenant's later requests: each then stored its
// timestamp converted as a timestamptz (hours off) and failed on the integer code
// the other tenant has as text. A description is kept only when the path was the
// tenant's.
func TestDescriptionsNeverLearnedOnAnotherPath(t *testing.T) {
	const insert = "INSERT INTO events (owner, at, amount, code) VALUES ($1, $2, $3, $4)"
	for _, tc := range []struct {
		name   string
		insert func(ctx context.Context, db tenantctx.DB, owner string) error
	}{
		{"statement", func(ctx context.Context, db tenantctx.DB, owner string) error {
			_, err := db.Exec(ctx, insert, owner, eventAt, eventAmount, "7")
			return err
		}},
		{"batch", func(ctx context.Context, db tenantctx.DB, owner string) error {
			b := &pgx.Batch{}
			b.Queue(insert, owner, eventAt, eventAmount, "7")
			return db.SendBatch(ctx, b).Close()
		}},
	} {
		for _, unbind := range []string{`SET LOCAL search_path TO "%s"`, `SELECT set_config('search_path', '"%s"', true)`} {
			t.Run(tc.name+"/"+unbind[:10], func(t *testing.T) {
				a, b := newTenantName("dnl"), newTenantName("dnlb")
				e := newEnv(t, 1, tenant.Config{Resolver: byHeader})
				provisionAt(t, e, eventsV1, a) // at timestamp, amount float8, code int
				provisionAt(t, e, eventsV2, b) // at timestamptz, amount numeric, code text
				_, err := runCounted(e, a, func(ctx context.Context, db tenantctx.DB) error {
					if _, err := db.Exec(ctx, strings.Replace(unbind, "%s", b, 1)); err != nil {
						return err
					}
					return tc.insert(ctx, db, "unbound")
				})
				require.ErrorIs(t, err, tenant.ErrTransactionLost)
				assert.Zero(t, e.count(t, `SELECT count(*) FROM "`+b+`".events`), "rolled back")

				n, err := runCounted(e, a, func(ctx context.Context, db tenantctx.DB) error { return tc.insert(ctx, db, "later") })
				require.NoError(t, err)
				assert.Equal(t, 1, n)
				epoch, amount, code := storedEvent(t, e, a)
				assert.Equal(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Unix(), epoch, "a timestamp stores the wall clock")
				assert.Equal(t, "1.2345678901234568e+16", amount)
				assert.Equal(t, "7", code)
			})
		}
	}
}

// The closing of statements evicted from the connection's cache goes behind the
// begin: when the begin fails (here its LOCK of the version marker times out behind
// a migration's lock), the server skips them, and the session must close them in a
// later round trip. Forgotten, they stayed prepared, and preparing one again failed
// with 42P05 on every attempt.
func TestFailedBeginKeepsEvictedStatementsToClose(t *testing.T) {
	a := newTenantName("fbk")
	ctx := context.Background()
	opts := append(withStatementCache(1), pool.WithConfig(func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["lock_timeout"] = "50ms" }))
	e := newEnvOn(t, testdb.URL(t), 1, opts, tenant.Config{Resolver: byHeader}, a)
	statements := []string{"SELECT $1::int", "SELECT $1::int + 1"}
	_, err := runCounted(e, a, func(ctx context.Context, db tenantctx.DB) error {
		for _, sql := range statements { // the second evicts the first
			if _, err := db.Exec(ctx, sql, 1); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)

	migration, err := e.admin.Begin(ctx)
	require.NoError(t, err)
	_, err = migration.Exec(ctx, "LOCK TABLE "+markerOf(t, e, a)+" IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	_, err = runCounted(e, a, func(ctx context.Context, db tenantctx.DB) error {
		_, err := db.Exec(ctx, "SELECT $1::int + 2", 1)
		return err
	})
	require.ErrorIs(t, err, tenant.ErrUnavailable)
	require.NoError(t, migration.Rollback(ctx))

	var got []int
	n, err := runCounted(e, a, scanEach(&got, statements...))
	require.NoError(t, err)
	assert.Equal(t, []int{7, 8}, got)
	assert.Equal(t, 1, n)
}
