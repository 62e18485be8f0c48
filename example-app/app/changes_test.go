package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/example-app/app"
)

// recentChanges asks the tenant's recent changes until want is the newest (changes
// arrive after their commit, not with the response).
func recentChanges(t *testing.T, f *fixture, tn, want string) []string {
	t.Helper()
	var got []string
	require.Eventually(t, func() bool {
		rec := f.do(byPath, tn, "GET", "/changes", "")
		require.Equal(t, http.StatusOK, rec.Code)
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		return len(got) > 0 && got[0] == want
	}, 10*time.Second, 20*time.Millisecond, "last seen: %v", got)
	return got
}

// The app hears of every change to a tenant's documents and counter, from a request or
// from raw SQL, and lists the tenant's latest, newest first, without the other
// tenant's.
func TestRecentChanges(t *testing.T) {
	f := newFixture(t, app.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, f.app.Watch(ctx))
	tn, other := f.tenant(t), f.tenant(t)

	rec := f.do(byPath, tn, "POST", "/documents", `{"title": {"en": "Report"}}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	recentChanges(t, f, tn, "insert documents 1")

	require.Equal(t, http.StatusOK, f.do(byPath, tn, "POST", "/counter", "").Code)
	recentChanges(t, f, tn, "update counter 1")

	_, err := f.pool.Exec(ctx, fmt.Sprintf(`DELETE FROM %q.documents WHERE id = 1`, tn))
	require.NoError(t, err)
	assert.Equal(t, []string{"delete documents 1", "update counter 1", "insert documents 1"}, recentChanges(t, f, tn, "delete documents 1"))

	rec = f.do(byPath, other, "GET", "/changes", "")
	assert.JSONEq(t, `[]`, rec.Body.String(), "the other tenant's list")
}
