package tenanttest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/locale"
	"github.com/tenantkit/tenant/tenantctx"
	"github.com/tenantkit/tenant/tenanttest"
)

// A conflict in a test's transaction is the error of the statement that met it, and
// the transaction is not run again: ending it reports nothing more, whether the
// transaction's context is still live (Begin) or ended with its test (Context).
func TestConflictIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		begin func(t *testing.T, mgr *tenant.Manager, name string) (context.Context, func() error)
	}{
		{"Begin", func(t *testing.T, mgr *tenant.Manager, name string) (context.Context, func() error) {
			ctx, end, err := tenanttest.Begin(context.Background(), mgr, name)
			require.NoError(t, err)
			return ctx, end
		}},
		{"Context", func(t *testing.T, mgr *tenant.Manager, name string) (context.Context, func() error) {
			return tenanttest.Context(t, mgr, name), func() error { return nil } // ended, and checked, at cleanup
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mgr := newManager(t)
			tenanttest.Tenant(t, mgr, "tt_conflict")
			t.Run("conflict", func(t *testing.T) {
				ctx, end := tc.begin(t, mgr, "tt_conflict")
				assert.Empty(t, bodies(t, ctx)) // reads what another transaction writes, below
				require.NoError(t, mgr.Run(context.Background(), "tt_conflict", func(ctx context.Context) error {
					_ = bodies(t, ctx)
					insert(t, ctx, "theirs")
					return nil
				}))
				_, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO notes (body) VALUES ('ours')")
				assert.True(t, tenant.IsConflict(err), "got %v", err)
				assert.NoError(t, end())
			})
			assert.Equal(t, []string{"theirs"}, committed(t, mgr, "tt_conflict"))
		})
	}
}

// Code under test that ends the transaction itself is reported by end.
func TestBeginReportsTransactionEnded(t *testing.T) {
	mgr := newManager(t)
	tenanttest.Tenant(t, mgr, "tt_ended")
	for _, sql := range []string{"ROLLBACK", "COMMIT"} {
		t.Run(sql, func(t *testing.T) {
			ctx, end, err := tenanttest.Begin(context.Background(), mgr, "tt_ended")
			require.NoError(t, err)
			_, _ = tenantctx.Session(ctx).Exec(ctx, sql)
			assert.ErrorIs(t, end(), tenant.ErrTransactionLost)
			assert.ErrorIs(t, end(), tenant.ErrTransactionLost, "end again says the same")
		})
	}
}

// The context is Run's: lazy (no connection before the first query) and with Run's
// options.
func TestContextIsRuns(t *testing.T) {
	mgr := tenanttest.New(t, tenant.Config{Migrations: migrations, Locales: []language.Tag{language.English, language.German}})
	tenanttest.Tenant(t, mgr, "tt_run")
	ctx := tenanttest.Context(t, mgr, "tt_run", tenant.WithLocale(language.German))
	assert.Equal(t, language.German, locale.FromContext(ctx))
	assert.Equal(t, int32(0), mgr.Pool().Stat().AcquiredConns(), "no connection before the first query")
	insert(t, ctx, "x")
	assert.Equal(t, int32(1), mgr.Pool().Stat().AcquiredConns(), "the test's transaction holds one")
}
