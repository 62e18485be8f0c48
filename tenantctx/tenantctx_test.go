package tenantctx_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	_, err = br.Query()
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
	assert.ErrorIs(t, br.QueryRow().Scan(), tenantctx.ErrNoSession)
	assert.ErrorIs(t, br.Close(), tenantctx.ErrNoSession)
	assert.Nil(t, br.Tx())
	_, err = db.CopyFrom(ctx, pgx.Identifier{"t"}, nil, nil)
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)
	_, err = db.Begin(ctx)
	assert.ErrorIs(t, err, tenantctx.ErrNoSession)

	assert.Equal(t, "", tenantctx.Schema(ctx))
	assert.False(t, tenantctx.AfterCommit(ctx, func(context.Context) {}))
	assert.False(t, tenantctx.RollbackOnly(ctx))
}

// NewContext is the test hook: Session and Schema read what it was given.
func TestNewContext(t *testing.T) {
	var db tenantctx.DB = fakeDB{}
	ctx := tenantctx.NewContext(context.Background(), "acme", db)
	assert.Equal(t, "acme", tenantctx.Schema(ctx))
	assert.Equal(t, db, tenantctx.Session(ctx))
	assert.True(t, tenantctx.AfterCommit(ctx, func(context.Context) {}))
	assert.True(t, tenantctx.RollbackOnly(ctx))

	_, err := tenantctx.Session(tenantctx.NewContext(ctx, "acme", nil)).Exec(ctx, "SELECT 1")
	assert.ErrorIs(t, err, tenantctx.ErrNoSession, "a context without a session behaves as none")
}

// fakeDB is only compared, never called.
type fakeDB struct{ tenantctx.DB }
