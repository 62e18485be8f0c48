package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/locale"
	"github.com/tenantkit/tenant/tenantctx"
)

func TestRun(t *testing.T) {
	ctx := context.Background()
	a := newTenantName("run")
	e := newEnv(t, 2, tenant.Config{Locales: []language.Tag{language.English, language.German}, Attempts: 3}, a)
	insert := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			assert.Equal(t, a, tenantctx.Schema(ctx))
			_, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO items (name) VALUES ($1)", name)
			return err
		}
	}

	t.Run("commit on nil", func(t *testing.T) {
		var hook atomic.Int32
		name := newTenantName("i")
		err := e.mgr.Run(ctx, a, func(ctx context.Context) error {
			tenantctx.AfterCommit(ctx, func(context.Context) { hook.Add(1) })
			return insert(name)(ctx)
		})
		require.NoError(t, err)
		assert.Equal(t, 1, e.items(t, a, name))
		assert.Equal(t, int32(1), hook.Load())
	})
	t.Run("roll back on error, returned unchanged", func(t *testing.T) {
		name := newTenantName("i")
		mine := errors.New("mine")
		err := e.mgr.Run(ctx, a, func(ctx context.Context) error {
			require.NoError(t, insert(name)(ctx))
			return mine
		})
		assert.Same(t, mine, err)
		assert.Equal(t, 0, e.items(t, a, name))
	})
	t.Run("roll back on panic", func(t *testing.T) {
		name := newTenantName("i")
		assert.PanicsWithValue(t, "boom", func() {
			_ = e.mgr.Run(ctx, a, func(ctx context.Context) error {
				require.NoError(t, insert(name)(ctx))
				panic("boom")
			})
		})
		assert.Equal(t, 0, e.items(t, a, name))
		assert.Zero(t, e.pool.Stat().AcquiredConns())
	})
	t.Run("rollback only", func(t *testing.T) {
		name := newTenantName("i")
		err := e.mgr.Run(ctx, a, func(ctx context.Context) error {
			tenantctx.RollbackOnly(ctx)
			return insert(name)(ctx)
		})
		require.NoError(t, err)
		assert.Equal(t, 0, e.items(t, a, name))
	})
	t.Run("retry on conflict", func(t *testing.T) {
		var attempts atomic.Int32
		err := e.mgr.Run(ctx, a, func(ctx context.Context) error {
			if attempts.Add(1) == 1 {
				_, err := tenantctx.Session(ctx).Exec(ctx, raise("40001", "could not serialize"))
				return err
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, int32(2), attempts.Load())
	})
	t.Run("retries exhausted", func(t *testing.T) {
		err := e.mgr.Run(ctx, a, func(ctx context.Context) error {
			_, err := tenantctx.Session(ctx).Exec(ctx, raise("40001", "could not serialize"))
			return err
		})
		assert.ErrorIs(t, err, tenant.ErrConflict)
		assert.True(t, tenant.IsConflict(err))
		var pgErr interface{ SQLState() string }
		require.ErrorAs(t, err, &pgErr, "the last attempt's error is wrapped")
		assert.Equal(t, "40001", pgErr.SQLState())
	})
	t.Run("retries exhausted, conflict swallowed", func(t *testing.T) {
		mine := errors.New("mine")
		err := e.mgr.Run(ctx, a, func(ctx context.Context) error {
			_, _ = tenantctx.Session(ctx).Exec(ctx, raise("40001", "could not serialize"))
			return mine
		})
		assert.ErrorIs(t, err, tenant.ErrConflict, "the same answer whether fn returned the conflict or not")
		assert.ErrorIs(t, err, mine)
		err = e.mgr.Run(ctx, a, func(ctx context.Context) error {
			_, _ = tenantctx.Session(ctx).Exec(ctx, raise("40001", "could not serialize"))
			return nil
		})
		assert.ErrorIs(t, err, tenant.ErrConflict)
	})
	t.Run("IsConflict", func(t *testing.T) {
		for _, tc := range []struct {
			err  error
			want bool
		}{
			{tenant.ErrConflict, true},
			{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40001"}), true},
			{&pgconn.PgError{Code: "40P01"}, true},
			{&pgconn.PgError{Code: "0A000", Message: "cached plan must not change result type"}, true},
			{&pgconn.PgError{Code: "0A000", Message: "feature not supported"}, false},
			{&pgconn.PgError{Code: "23505"}, false},
			{errors.New("other"), false},
			{nil, false},
		} {
			assert.Equal(t, tc.want, tenant.IsConflict(tc.err), "%v", tc.err)
		}
	})
	t.Run("commit failure", func(t *testing.T) {
		err := e.mgr.Run(ctx, a, func(ctx context.Context) error {
			_, err := tenantctx.Session(ctx).Exec(ctx, "INSERT INTO pending VALUES (7), (7)")
			return err
		})
		assert.ErrorIs(t, err, tenant.ErrCommitFailed)
	})
	t.Run("locale", func(t *testing.T) {
		var got []language.Tag
		fn := func(ctx context.Context) error { got = append(got, locale.FromContext(ctx)); return nil }
		require.NoError(t, e.mgr.Run(ctx, a, fn))
		require.NoError(t, e.mgr.Run(ctx, a, fn, tenant.WithLocale(language.German)))
		assert.Equal(t, []language.Tag{language.English, language.German}, got)
	})
	t.Run("unknown and invalid tenants", func(t *testing.T) {
		called := false
		fn := func(context.Context) error { called = true; return nil }
		assert.ErrorIs(t, e.mgr.Run(ctx, "nosuch", fn), tenant.ErrUnknownTenant)
		assert.ErrorIs(t, e.mgr.Run(ctx, "Bad Name", fn), tenant.ErrUnknownTenant)
		assert.False(t, called)
	})
}
