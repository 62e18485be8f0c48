package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	env := func(string) string { return "" }
	cfg, err := parseFlags(nil, env)
	require.NoError(t, err)
	assert.Equal(t, localURL, cfg.dsn)
	assert.Equal(t, "tenant_bench", cfg.database)
	assert.Len(t, cfg.servers, len(kinds))
	assert.Equal(t, []int{1, 200}, cfg.tenants)
	assert.Equal(t, []string{"read-committed", "serializable"}, cfg.isolation)
	assert.Equal(t, []time.Duration{0}, cfg.delays)
	assert.Equal(t, 200, cfg.maxTenants())

	cfg, err = parseFlags([]string{"-servers", "library,handwritten", "-isolation", "SERIALIZABLE", "-delay", "0,1ms", "-db", ""},
		func(string) string { return "postgres://elsewhere/x" })
	require.NoError(t, err)
	assert.Equal(t, []string{"handwritten", "library"}, []string{cfg.servers[0].name, cfg.servers[1].name}, "in the order of kinds")
	assert.Equal(t, []string{"serializable"}, cfg.isolation)
	assert.Equal(t, []time.Duration{0, time.Millisecond}, cfg.delays)
	assert.Equal(t, "postgres://elsewhere/x", cfg.dsn)
	assert.Empty(t, cfg.database)

	for _, bad := range [][]string{
		{"-servers", "nginx"}, {"-isolation", "snapshot"}, {"-tenants", "0"}, {"-tenants", "x"},
		{"-delay", "-1ms"}, {"-rounds", "0"}, {"-duration", "0s"}, {"extra"},
	} {
		_, err := parseFlags(bad, env)
		assert.Error(t, err, bad)
	}
}
