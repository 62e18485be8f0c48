package tenant_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenantsql"
)

// sqlDB is the database/sql handle on request sessions.
var sqlDB = tenantsql.Open()

// Round trips on the wire per request, once its statements are described: the
// isolation guarantees (version lock, binding check, connection reset) ride on the
// round trips that begin and end the transaction, adding none, and the first
// statement (or batch) rides with the begin: one statement costs two, where the
// careful hand-written transaction costs three. Savepoint commands ride with the
// next statement (a RELEASE left at the end is dropped: COMMIT releases it).
// CopyFrom describes the table in the begin's round trip, then copies: COPY cannot
// be pipelined.
func TestRoundTrips(t *testing.T) {
	a := newTenantName("rtt")
	e := newEnv(t, 1, tenant.Config{Resolver: byHeader}, a)
	statement := func(fn func(ctx context.Context, db tenantctx.DB) error) http.Handler {
		return tenant.Middleware(e.mgr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !assert.NoError(t, fn(r.Context(), tenantctx.Session(r.Context()))) {
				return
			}
		}))
	}
	for _, tc := range []struct {
		name  string
		trips int64 // COPY: plus one at most, see below
		h     http.Handler
	}{
		{"no query", 0, statement(func(context.Context, tenantctx.DB) error { return nil })},
		{"Exec", 2, statement(func(ctx context.Context, db tenantctx.DB) error {
			_, err := db.Exec(ctx, "UPDATE counter SET value = value WHERE id = $1", 1)
			return err
		})},
		{"Query", 2, statement(func(ctx context.Context, db tenantctx.DB) error {
			rows, err := db.Query(ctx, "SELECT id FROM counter WHERE id = $1", 1)
			if err != nil {
				return err
			}
			_, err = pgx.CollectRows(rows, pgx.RowTo[int])
			return err
		})},
		{"QueryRow", 2, statement(func(ctx context.Context, db tenantctx.DB) error {
			var v int
			return db.QueryRow(ctx, "SELECT value FROM counter WHERE id = $1", 1).Scan(&v)
		})},
		{"Query with result formats by type", 2, statement(func(ctx context.Context, db tenantctx.DB) error {
			rows, err := db.Query(ctx, "SELECT id, value::text FROM counter WHERE id = $1", pgx.QueryResultFormatsByOID{pgtype.Int4OID: pgx.BinaryFormatCode}, 1)
			if err != nil {
				return err
			}
			defer rows.Close()
			formats := []int16{rows.FieldDescriptions()[0].Format, rows.FieldDescriptions()[1].Format}
			assert.Equal(t, []int16{pgx.BinaryFormatCode, pgx.TextFormatCode}, formats)
			return nil
		})},
		{"SendBatch with result formats by type", 2, statement(func(ctx context.Context, db tenantctx.DB) error {
			b := &pgx.Batch{}
			b.Queue("SELECT value FROM counter WHERE id = $1", pgx.QueryResultFormatsByOID{}, 1)
			b.Queue("SELECT value FROM counter WHERE id = $1", 1)
			br := db.SendBatch(ctx, b)
			defer br.Close()
			for _, want := range []int16{pgx.TextFormatCode, pgx.BinaryFormatCode} {
				rows, err := br.Query()
				if err != nil {
					return err
				}
				assert.Equal(t, want, rows.FieldDescriptions()[0].Format)
				rows.Close()
			}
			return nil
		})},
		{"database/sql QueryRowContext", 2, statement(func(ctx context.Context, _ tenantctx.DB) error {
			var v int
			return sqlDB.QueryRowContext(ctx, "SELECT value FROM counter WHERE id = $1", 1).Scan(&v)
		})},
		{"SendBatch of two", 2, statement(func(ctx context.Context, db tenantctx.DB) error {
			b := &pgx.Batch{}
			b.Queue("SELECT value FROM counter WHERE id = $1", 1)
			b.Queue("UPDATE counter SET value = value WHERE id = $1", 1)
			return db.SendBatch(ctx, b).Close()
		})},
		{"Exec without arguments", 2, statement(func(ctx context.Context, db tenantctx.DB) error {
			_, err := db.Exec(ctx, "UPDATE counter SET value = value WHERE id = 1; UPDATE counter SET value = value WHERE id = 2")
			return err
		})},
		{"CopyFrom", 3, statement(func(ctx context.Context, db tenantctx.DB) error {
			_, err := db.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"name"}, pgx.CopyFromRows([][]any{{"copied"}}))
			return err
		})},
		{"savepoint", 2, statement(func(ctx context.Context, db tenantctx.DB) error {
			sp, err := db.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := sp.Exec(ctx, "UPDATE counter SET value = value WHERE id = $1", 1); err != nil {
				return err
			}
			return sp.Commit(ctx)
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			do(tc.h, "POST", "/", nil, "X-Tenant", a) // admits the tenant, prepares the statements
			trips := e.roundTrips(func() { assert.Equal(t, 200, do(tc.h, "POST", "/", nil, "X-Tenant", a).Code) })
			if tc.name == "CopyFrom" && trips == tc.trips+1 {
				// pgconn streams COPY data while it reads the server's CopyInResponse:
				// whether the data goes out before or after that read is timing.
				return
			}
			assert.Equal(t, tc.trips, trips)
		})
	}

	t.Run("hand-written", func(t *testing.T) {
		ctx := context.Background()
		handWritten := func() {
			tx, err := e.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: `BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL search_path TO "` + a + `"`})
			require.NoError(t, err)
			var v int
			require.NoError(t, tx.QueryRow(ctx, "SELECT value FROM counter WHERE id = $1", 1).Scan(&v))
			require.NoError(t, tx.Commit(ctx))
		}
		handWritten() // prepares the statement
		assert.Equal(t, int64(3), e.roundTrips(handWritten))
	})
}
