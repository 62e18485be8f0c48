package sqlclients_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tenantkit/tenant/tenantsql"
)

type gormDocument struct {
	ID        int64
	Title     string
	CreatedAt time.Time
}

func (gormDocument) TableName() string { return "documents" }

// gorm opens and pings outside any request: neither needs a tenant.
func openGorm(t *testing.T) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: tenantsql.Open()}), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	return db
}

func TestGorm(t *testing.T) {
	a, b := "gorm_a", "gorm_b"
	mgr := setup(t, a, b)
	db := openGorm(t)
	titles := func(name string) []string {
		var got []string
		serve(t, mgr, name, http.StatusOK, func(w http.ResponseWriter, r *http.Request) {
			require.NoError(t, db.WithContext(r.Context()).Model(&gormDocument{}).Order("id").Pluck("title", &got).Error)
		})
		return got
	}

	serve(t, mgr, a, http.StatusCreated, func(w http.ResponseWriter, r *http.Request) {
		tx := db.WithContext(r.Context())
		doc := gormDocument{Title: "created"}
		require.NoError(t, tx.Create(&doc).Error, "gorm wraps it in a transaction: a savepoint")
		assert.Equal(t, int64(2), doc.ID, "the generated id comes back")

		res := tx.Model(&gormDocument{}).Where("id > ?", 0).Update("title", gorm.Expr("title || ?", "!"))
		require.NoError(t, res.Error)
		assert.Equal(t, int64(2), res.RowsAffected, "a bulk update reports every row")

		var got gormDocument
		require.NoError(t, tx.First(&got, doc.ID).Error)
		assert.Equal(t, "created!", got.Title)

		err := tx.Transaction(func(tx *gorm.DB) error {
			require.NoError(t, tx.Create(&gormDocument{Title: "rolled back"}).Error)
			return errors.New("undo")
		})
		require.EqualError(t, err, "undo")
		w.WriteHeader(http.StatusCreated)
	})
	serve(t, mgr, a, http.StatusInternalServerError, func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, db.WithContext(r.Context()).Delete(&gormDocument{}, 1).Error)
		fail(w)
	})

	assert.Equal(t, []string{a + "!", "created!"}, titles(a))
	assert.Equal(t, []string{b}, titles(b), "the other tenant, on the same backend")

	var n int64
	err := db.Model(&gormDocument{}).Count(&n).Error // no WithContext: no tenant
	assert.ErrorContains(t, err, "no tenant session")
}
