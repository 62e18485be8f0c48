package pool_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/pool"
)

func ExampleNew() {
	ctx := context.Background()
	p, err := pool.New(ctx, testdb.DatabaseURL(), // the application's DSN
		pool.WithMaxConns(8),
		pool.WithOnCreate(func(ctx context.Context, p *pgxpool.Pool) error { return p.Ping(ctx) }),
	)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	fmt.Println(p.Config().MaxConnLifetime, p.Config().MaxConns)
	// Output: 1h0m0s 8
}

// Behind PgBouncer in transaction mode older than 1.21, send statements without the
// prepared-statement cache.
func ExampleWithQueryExecMode() {
	cfg, err := pool.ParseConfig("postgres://app@pgbouncer:6432/app", pool.WithQueryExecMode(pgx.QueryExecModeExec))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.ConnConfig.DefaultQueryExecMode)
	// Output: exec
}

func ExampleRegistry() {
	ctx := context.Background()
	logger := slog.Default() // the application's logger
	pools := pool.NewRegistry(pool.WithMaxConns(8), pool.WithLogger(logger))
	defer pools.Close()

	a, _ := pools.Get(ctx, testdb.DatabaseURL())
	b, _ := pools.Get(ctx, testdb.DatabaseURL())
	fmt.Println(a == b)

	pools.Invalidate(testdb.DatabaseURL()) // closes it; the next Get makes a new pool
	c, _ := pools.Get(ctx, testdb.DatabaseURL())
	fmt.Println(a == c)
	// Output:
	// true
	// false
}

func ExampleRedact() {
	fmt.Println(pool.Redact("postgres://app:s3cret@db:5432/app"))
	fmt.Println(pool.Redact("host=db user=app password=s3cret"))
	// Output:
	// postgres://app:xxxxx@db:5432/app
	// host=db user=app password=xxxxx
}
