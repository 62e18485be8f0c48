package locale_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant/internal/testdb"
	"github.com/tenantkit/tenant/locale"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/schema"
)

// dbWithHstore returns a pool whose connections know hstore, on a database where the
// extensions are provisioned, and a transaction bound to a fresh tenant schema.
func tenantTx(t *testing.T) (pgx.Tx, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	raw := testdb.Pool(t)
	prov, err := schema.NewProvisioner(raw, schema.Config{Extensions: []string{"hstore"}})
	require.NoError(t, err)
	require.NoError(t, prov.Ensure(ctx, "loc_test"))
	t.Cleanup(func() { _ = prov.Drop(ctx, "loc_test") })

	p, err := pool.New(ctx, testdb.URL(t), pool.WithConfig(func(c *pgxpool.Config) { c.AfterConnect = locale.RegisterHstore }))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	tx, err := p.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	_, err = tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", schema.SearchPath("loc_test"))
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "CREATE TABLE docs (id int PRIMARY KEY, title jsonb NOT NULL, label hstore)")
	require.NoError(t, err)
	return tx, p
}

func TestTextRoundTrips(t *testing.T) {
	ctx := context.Background()
	tx, _ := tenantTx(t)
	in := locale.Text{"en": "report", "de-CH": "Bericht \"CH\"", "fr": "rapport'; DROP TABLE docs; --"}

	_, err := tx.Exec(ctx, "INSERT INTO docs VALUES (1, $1, $2)", in, in)
	require.NoError(t, err)

	var asJSON, asHstore locale.Text
	require.NoError(t, tx.QueryRow(ctx, "SELECT title, label FROM docs WHERE id = 1").Scan(&asJSON, &asHstore))
	assert.Equal(t, in, asJSON, "JSONB column")
	assert.Equal(t, in, asHstore, "hstore column")

	var echoed locale.Text
	require.NoError(t, tx.QueryRow(ctx, "SELECT $1::jsonb", in).Scan(&echoed))
	assert.Equal(t, in, echoed, "as a query parameter")
	var key string
	require.NoError(t, tx.QueryRow(ctx, "SELECT $1::jsonb ->> 'de-CH'", in).Scan(&key))
	assert.Equal(t, `Bericht "CH"`, key)

	var null locale.Text
	require.NoError(t, tx.QueryRow(ctx, "SELECT NULL::hstore").Scan(&null))
	assert.Nil(t, null)
}

func TestLocalizedSQL(t *testing.T) {
	ctx := context.Background()
	tx, _ := tenantTx(t)
	_, err := tx.Exec(ctx, `INSERT INTO docs (id, title) VALUES
		(1, '{"en": "b-report", "de": "a-Bericht"}'),
		(2, '{"en": "a-minutes"}'),
		(3, '{"de-CH": "c-Traktanden", "en": "c-agenda"}')`)
	require.NoError(t, err)

	list := func(tag language.Tag) []string {
		c := locale.NewContext(ctx, tag, language.English)
		title := locale.Localized(c, "docs", "title")
		rows, err := tx.Query(ctx, "SELECT "+title.SQL(1)+" FROM docs ORDER BY "+title.SQL(1), title.Arg())
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return got
	}
	assert.Equal(t, []string{"a-minutes", "b-report", "c-agenda"}, list(language.English))
	assert.Equal(t, []string{"a-Bericht", "a-minutes", "c-agenda"}, list(language.German))
	assert.Equal(t, []string{"a-Bericht", "a-minutes", "c-Traktanden"}, list(language.MustParse("de-CH")))

	title := locale.LocalizedFor([]string{"de", "en"}, "title")
	assert.Equal(t, `coalesce("title"->>(($1::text[])[1]), "title"->>(($1::text[])[2]))`, title.SQL(1))
	var id int
	require.NoError(t, tx.QueryRow(ctx, "SELECT id FROM docs WHERE "+title.SQL(2)+" = $1", "a-Bericht", title.Arg()).Scan(&id))
	assert.Equal(t, 1, id)

	evil := locale.LocalizedFor([]string{"en'); DROP TABLE docs; --"}, "title")
	var n int
	require.NoError(t, tx.QueryRow(ctx, "SELECT count("+evil.SQL(1)+") FROM docs", evil.Arg()).Scan(&n))
	assert.Zero(t, n, "tags travel as a parameter, never as SQL")
	assert.Equal(t, "NULL::text", locale.LocalizedFor(nil, "title").SQL(1))
}

func TestRegisterHstoreWithoutExtension(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.NewDatabase(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	assert.ErrorIs(t, locale.RegisterHstore(ctx, conn), locale.ErrNoHstore)
}
