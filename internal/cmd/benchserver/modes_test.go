package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/schema"
)

// Every server mode answers a document of a tenant with its title, and 404 for a
// missing document or an invalid tenant name.
func TestModes(t *testing.T) {
	ctx := context.Background()
	pool := testdb.Pool(t)
	prov, err := schema.NewProvisioner(pool, schema.Config{Migrations: fstest.MapFS{
		"001_documents.sql": {Data: []byte(`CREATE TABLE documents (id bigint PRIMARY KEY, title jsonb NOT NULL);
			INSERT INTO documents VALUES (1, '{"en": "One"}')`)},
	}})
	require.NoError(t, err)
	require.NoError(t, prov.Ensure(ctx, "mode_a"))

	for _, mode := range []string{"handwritten", "autocommit", "nodb", "library"} {
		t.Run(mode, func(t *testing.T) {
			h, closeAll, err := handler(ctx, mode, testdb.URL(t), pgx.ReadCommitted)
			require.NoError(t, err)
			defer closeAll()
			get := func(tenant, path string) *httptest.ResponseRecorder {
				req := httptest.NewRequest("GET", path, nil)
				req.Header.Set(tenantHeader, tenant)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			rec := get("mode_a", "/documents/1")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			if mode == "nodb" {
				assert.Equal(t, string(constantTitle), rec.Body.String())
				return
			}
			assert.JSONEq(t, `{"en": "One"}`, rec.Body.String())
			assert.Equal(t, http.StatusNotFound, get("mode_a", "/documents/2").Code)
			assert.Equal(t, http.StatusNotFound, get("pg_catalog", "/documents/1").Code)
			assert.Equal(t, http.StatusOK, get("", "/healthz").Code)
		})
	}
	_, _, err = handler(ctx, "nginx", testdb.URL(t), pgx.ReadCommitted)
	assert.ErrorContains(t, err, "unknown mode")
}

func TestParseIsolation(t *testing.T) {
	for in, want := range map[string]pgx.TxIsoLevel{
		"read-committed": pgx.ReadCommitted, "repeatable-read": pgx.RepeatableRead, "SERIALIZABLE": pgx.Serializable,
	} {
		got, err := parseIsolation(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := parseIsolation("snapshot")
	assert.Error(t, err)
}
