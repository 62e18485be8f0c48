package tenant_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

var spreadCeiling = flag.Bool("spread.ceiling", false, "TestTenantSpread: also measure the server's own ceiling (hand-written pgx, each client alone on its connection with its share of the tenants)")

// ceilingClient is a client of the ceiling: a connection of its own, the tenants that
// only it serves, and a statement prepared for each of them, so that nothing the
// library does (waiting for a group, a statement or binding learnt again) is in its
// rate: what is left is the server's cost of serving many tenants.
type ceilingClient struct {
	conn    *pgx.Conn
	tenants []string
}

// ceiling is the spread's ceiling over names, against one tenant in the same run:
// -spread.conns clients, client k alone on its connection with every conns-th tenant
// (the tenants of a group, as AffinityGroups would have it), each request one round
// trip (BEGIN, the tenant's search_path, its statement, COMMIT, pipelined). It runs
// -spread.rounds rounds of both, taking turns, after -spread.passes (at least one)
// requests for every tenant, and returns the median of the per-round ratios.
func ceiling(t *testing.T, names []string) (ratio, oneRate, spreadRate float64) {
	t.Helper()
	ctx := context.Background()
	one := ceilingClients(t, names[:1], *spreadConns, true)
	spread := ceilingClients(t, names, *spreadConns, false)
	for range max(*spreadPasses, 1) {
		for _, cs := range [][]*ceilingClient{one, spread} {
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Go(func() {
					for _, name := range c.tenants {
						if !assert.NoError(t, c.read(ctx, name, 1)) {
							return
						}
					}
				})
			}
			wg.Wait()
		}
	}
	var ratios, ones, spreads []float64
	for range *spreadRounds {
		o, s := ceilingRate(t, one), ceilingRate(t, spread)
		ones, spreads, ratios = append(ones, o), append(spreads, s), append(ratios, s/o)
	}
	return median(ratios), median(ones), median(spreads)
}

// ceilingClients connects conns clients; each serves every conns-th tenant of names
// (all of them when shared), with each tenant's statement prepared.
func ceilingClients(t *testing.T, names []string, conns int, shared bool) []*ceilingClient {
	t.Helper()
	ctx := context.Background()
	cs := make([]*ceilingClient, conns)
	for k := range cs {
		conn, err := pgx.Connect(ctx, testdb.URL(t))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		c := &ceilingClient{conn: conn}
		for i, name := range names {
			if shared || i%conns == k {
				c.tenants = append(c.tenants, name)
			}
		}
		// A statement is planned for the search_path of its first run and planned
		// again whenever it runs under another: one per tenant, as the library's,
		// parsed under the tenant's search_path (SET LOCAL: the statement outlives
		// its transaction, the setting does not).
		for _, name := range c.tenants {
			require.NoError(t, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", schema.SearchPath(name)); err != nil {
					return err
				}
				_, err := tx.Prepare(ctx, "doc_"+name, "SELECT title FROM docs WHERE id = $1")
				return err
			}))
		}
		cs[k] = c
	}
	return cs
}

// read is one request: one document of the tenant, in a transaction of its own.
func (c *ceilingClient) read(ctx context.Context, name string, id int) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL SERIALIZABLE")
	b.Queue("SELECT set_config('search_path', $1, true)", schema.SearchPath(name))
	var title string
	b.Queue("doc_"+name, id).QueryRow(func(row pgx.Row) error { return row.Scan(&title) })
	b.Queue("COMMIT")
	if err := c.conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if want := fmt.Sprintf("doc %d", id); title != want {
		return fmt.Errorf("tenant %s: %q, want %q", name, title, want)
	}
	return nil
}

// ceilingRate runs the clients for -spread.duration, each a random tenant of its
// own at a time, and returns the requests answered per second.
func ceilingRate(t *testing.T, cs []*ceilingClient) float64 {
	t.Helper()
	ctx := context.Background()
	return requestRate(t, len(cs), *spreadDuration, func(k int) error {
		c := cs[k]
		return c.read(ctx, c.tenants[rand.IntN(len(c.tenants))], 1+rand.IntN(10))
	})
}
