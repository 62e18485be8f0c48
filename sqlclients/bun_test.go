package sqlclients_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/tenantkit/tenant/tenantsql"
)

var bunDB = bun.NewDB(tenantsql.Open(), pgdialect.New())

type bunDocument struct {
	bun.BaseModel `bun:"table:documents"`
	ID            int64     `bun:",pk,autoincrement"`
	Title         string    `bun:",notnull"`
	Tags          []string  `bun:",array"`
	CreatedAt     time.Time `bun:",nullzero,notnull,default:current_timestamp"`
}

func TestBun(t *testing.T) {
	a, b := "bun_a", "bun_b"
	mgr := setup(t, a, b)
	documents := func(name string) []bunDocument {
		var got []bunDocument
		serve(t, mgr, name, http.StatusOK, func(w http.ResponseWriter, r *http.Request) {
			require.NoError(t, bunDB.NewSelect().Model(&got).Order("id").Scan(r.Context()))
		})
		return got
	}

	serve(t, mgr, a, http.StatusCreated, func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		doc := bunDocument{Title: "inserted", Tags: []string{"x", "y z"}}
		_, err := bunDB.NewInsert().Model(&doc).Returning("id, created_at").Exec(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(2), doc.ID, "the generated id comes back")
		assert.WithinDuration(t, time.Now(), doc.CreatedAt, time.Minute)

		res, err := bunDB.NewUpdate().Model((*bunDocument)(nil)).Set("title = title || ?", "!").Where("id > 0").Exec(ctx)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		assert.Equal(t, int64(2), n, "a bulk update reports every row")

		err = bunDB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewInsert().Model(&bunDocument{Title: "rolled back", Tags: []string{}}).Exec(ctx)
			require.NoError(t, err)
			return errors.New("undo")
		})
		require.EqualError(t, err, "undo")
		w.WriteHeader(http.StatusCreated)
	})
	serve(t, mgr, a, http.StatusInternalServerError, func(w http.ResponseWriter, r *http.Request) {
		_, err := bunDB.NewDelete().Model((*bunDocument)(nil)).Where("id = ?", 1).Exec(r.Context())
		require.NoError(t, err)
		fail(w)
	})

	docs := documents(a)
	require.Len(t, docs, 2)
	assert.Equal(t, a+"!", docs[0].Title)
	assert.Equal(t, "inserted!", docs[1].Title)
	assert.Equal(t, []string{"x", "y z"}, docs[1].Tags)
	docs = documents(b)
	require.Len(t, docs, 1, "the other tenant, on the same backend")
	assert.Equal(t, b, docs[0].Title)
}
