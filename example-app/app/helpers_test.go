package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/example-app/app"
	"github.com/tenantkit/tenant/internal/testdb"
)

type fixture struct {
	app  *app.App
	h    http.Handler
	pool *pgxpool.Pool
}

func newFixture(t *testing.T, cfg app.Config) *fixture {
	t.Helper()
	pool := testdb.Pool(t)
	cfg.Pool = pool
	a, err := app.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return &fixture{app: a, h: a.Handler(), pool: pool}
}

// tenant provisions a fresh tenant, dropped after the test.
func (f *fixture) tenant(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "app_" + hex.EncodeToString(b)
	require.NoError(t, f.app.Manager().Provisioner().Create(context.Background(), name))
	t.Cleanup(func() { _ = f.app.Manager().Drop(context.Background(), name) })
	return name
}

// style sends a request to a tenant by subdomain or by path prefix.
type style func(tenant, path string) (host, target string)

var (
	bySubdomain style = func(tenant, path string) (string, string) { return tenant + ".localhost:8080", path }
	byPath      style = func(tenant, path string) (string, string) { return "localhost:8080", "/t/" + tenant + path }
	styles            = map[string]style{"subdomain": bySubdomain, "path": byPath}
)

func (f *fixture) do(s style, tenant, method, path, body string, header ...string) *httptest.ResponseRecorder {
	host, target := s(tenant, path)
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Host = host
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) count(t *testing.T, tenant string) int {
	t.Helper()
	var n int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM "`+tenant+`".documents`).Scan(&n))
	return n
}

func decode[T any](t *testing.T, r io.Reader) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&v))
	return v
}

// doc mirrors the contract's JSON exactly (unknown fields fail decoding).
type doc struct {
	ID           int               `json:"id"`
	Title        string            `json:"title"`
	Locale       string            `json:"locale"`
	Translations map[string]string `json:"translations"`
}

func newRecorder(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
