package tenantsql_test

import (
	"database/sql"
	"net/http"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/tenantctx"
)

// Arguments go through pgx's encoding (slices, netip, pgtype values: database/sql alone
// refuses them) and results scan as with pgx/v5/stdlib, and into any type pgx scans
// through pgtype.Map.SQLScanner (viaPgx). Each case scans into a new value of want's
// type, in a transaction of the tenant that is rolled back.
func TestTypes(t *testing.T) {
	a := "sql_types"
	mgr := setup(t, a)
	types := pgtype.NewMap()
	when := time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		sql    string
		args   []any
		viaPgx bool
		want   any
	}{
		{"int4 to int", "SELECT $1::int4", []any{42}, false, 42},
		{"int8", "SELECT $1::int8", []any{int64(1) << 40}, false, int64(1) << 40},
		{"numeric to string", "SELECT $1::numeric * 2", []any{"6172839450617283945.25"}, false, "12345678901234567890.50"},
		{"float8", "SELECT $1::float8", []any{0.5}, false, 0.5},
		{"bool", "SELECT $1::bool", []any{true}, false, true},
		{"null", "SELECT $1::text", []any{nil}, false, sql.NullString{}},
		{"pgtype argument", "SELECT $1::text", []any{pgtype.Text{String: "x", Valid: true}}, false, "x"},
		{"uuid", "SELECT $1::uuid", []any{"f47ac10b-58cc-4372-a567-0e02b2c3d479"}, false, "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
		{"timestamptz", "SELECT $1::timestamptz", []any{when}, false, when.Local()},
		{"date", "SELECT $1::date", []any{"2026-11-23"}, false, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)},
		{"interval", "SELECT $1::interval", []any{"26 hours"}, false, "26:00:00"},
		{"bytea", "SELECT $1::bytea", []any{[]byte{0, 1, 2, 255}}, false, []byte{0, 1, 2, 255}},
		{"jsonb", "SELECT $1::jsonb", []any{`{"a": [1, 2]}`}, false, []byte(`{"a": [1, 2]}`)},
		{"text[] from a slice, as text", "SELECT $1::text[]", []any{[]string{"a", "b c"}}, false, `{a,"b c"}`},
		{"text[] into a slice", "SELECT $1::text[]", []any{[]string{"a", "b c"}}, true, []string{"a", "b c"}},
		{"int[] into a slice", "SELECT array_agg(g) FROM generate_series(1, $1::int) g", []any{3}, true, []int32{1, 2, 3}},
		{"inet from netip", "SELECT $1::inet", []any{netip.MustParseAddr("10.1.2.3")}, false, "10.1.2.3"},
		{"enum", "SELECT 'sad'::mood", nil, false, "sad"},
		{"oid", "SELECT 'pg_class'::regclass::oid", nil, false, int64(1259)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(mgr, a, func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				tenantctx.RollbackOnly(ctx)
				_, err := db.ExecContext(ctx, "CREATE TYPE mood AS ENUM ('sad', 'ok')")
				require.NoError(t, err)
				got := reflect.New(reflect.TypeOf(tc.want))
				dest := got.Interface()
				if tc.viaPgx {
					dest = types.SQLScanner(dest)
				}
				require.NoError(t, db.QueryRowContext(ctx, tc.sql, tc.args...).Scan(dest))
				assert.Equal(t, tc.want, got.Elem().Interface())
			})
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		})
	}
}
