package schema

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations(fstest.MapFS{
		"010_later.sql":  {Data: []byte("CREATE TABLE b ();")},
		"002_second.sql": {Data: []byte("CREATE TABLE a ();\n---- create above / drop below ----\nDROP TABLE a;")},
		"README.md":      {Data: []byte("not a migration")},
		"sub/001_x.sql":  {Data: []byte("ignored: only the root is read")},
		"0001_first.sql": {Data: []byte("SELECT 1;")},
	})
	require.NoError(t, err)
	require.Len(t, ms, 3)
	assert.Equal(t, []int64{1, 2, 10}, []int64{ms[0].Version, ms[1].Version, ms[2].Version})
	assert.Equal(t, "0001_first.sql", ms[0].Name)
	assert.NotContains(t, ms[1].SQL, "DROP TABLE", "the down part is not applied")

	none, err := loadMigrations(nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestLoadMigrationsErrors(t *testing.T) {
	tests := map[string]fstest.MapFS{
		"bad name":  {"first.sql": {Data: []byte("SELECT 1")}},
		"dash name": {"1-first.sql": {Data: []byte("SELECT 1")}},
		"zero":      {"0_first.sql": {Data: []byte("SELECT 1")}},
		"duplicate": {"1_a.sql": {Data: []byte("SELECT 1")}, "01_b.sql": {Data: []byte("SELECT 1")}},
		"empty":     {"1_a.sql": {Data: []byte("  \n---- create above / drop below ----\nDROP TABLE a;")}},
	}
	for name, fsys := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := loadMigrations(fsys)
			assert.ErrorIs(t, err, ErrMigrations)
			_, err = NewProvisioner(nil, Config{Migrations: fsys})
			assert.ErrorIs(t, err, ErrMigrations, "NewProvisioner refuses them too")
		})
	}
}
