package tenantctx_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant/tenantctx"
)

func TestOutsideALifecycle(t *testing.T) {
	ctx := context.Background()
	db := tenantctx.Session(ctx)
	require.NotNil(t, db, "Session is never nil")
	_, err := db.Exec(ctx, "SELECT 1")
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
	_, err = db.Query(ctx, "SELECT 1")
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
	assert.ErrorIs(t, db.QueryRow(ctx, "SELECT 1").Scan(), tenantctx.ErrNoSession)
	br := db.SendBatch(ctx, &pgx.Batch{})
	_, err = br.Exec()
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
	assert.ErrorIs(t, br.QueryRow().Scan(), tenantctx.ErrNoSession)
	assert.ErrorIs(t, br.Close(), tenantctx.ErrNoSession)
	assert.Nil(t, br.Tx())
	_, err = db.CopyFrom(ctx, pgx.Identifier{"t"}, nil, nil)
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
	_, err = db.Begin(ctx)
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)

	assert.Equal(t, "", tenantctx.Schema(ctx))
	assert.Equal(t, language.Und, tenantctx.Locale(ctx))
	assert.False(t, tenantctx.AfterCommit(ctx, func(context.Context) {}))
	assert.False(t, tenantctx.RollbackOnly(ctx))
}

func TestScope(t *testing.T) {
	s := tenantctx.NewScope("acme", nil)
	ctx := tenantctx.WithLocale(tenantctx.WithScope(context.Background(), s), language.German)
	assert.Equal(t, "acme", tenantctx.Schema(ctx))
	assert.Equal(t, language.German, tenantctx.Locale(ctx))
	got, ok := tenantctx.ScopeFrom(ctx)
	require.True(t, ok)
	assert.Same(t, s, got)

	var order []int
	assert.True(t, tenantctx.AfterCommit(ctx, func(context.Context) { order = append(order, 1) }))
	assert.True(t, tenantctx.AfterCommit(ctx, func(context.Context) { order = append(order, 2) }))
	for _, fn := range s.AfterCommitFuncs() {
		fn(ctx)
	}
	assert.Equal(t, []int{1, 2}, order)

	assert.False(t, s.IsRollbackOnly())
	assert.True(t, tenantctx.RollbackOnly(ctx))
	assert.True(t, s.IsRollbackOnly())

	_, err := tenantctx.Session(ctx).Exec(ctx, "SELECT 1")
	assert.ErrorIs(t, err, tenantctx.ErrNoSession, "a scope without a session behaves as none")
}
