package tenant_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tenantkit/tenant"
)

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		err        error
		status     int
		body       string
		retryAfter string
	}{
		{fmt.Errorf("%w: schema \"x\" does not exist", tenant.ErrUnknownTenant), 404, "unknown tenant\n", ""},
		{fmt.Errorf("%w: dial tcp: refused", tenant.ErrUnavailable), 503, "service unavailable\n", "5"},
		{fmt.Errorf("%w: retries exhausted", tenant.ErrConflict), 409, "conflict, please retry\n", ""},
		{fmt.Errorf("%w: 23505 duplicate key", tenant.ErrCommitFailed), 500, "commit failed\n", ""},
		{fmt.Errorf("%w: transaction 1234: read: connection reset", tenant.ErrCommitUnknown), 500, "commit outcome unknown\n", ""},
		{errors.New("anything else"), 500, "Internal Server Error\n", ""},
	} {
		rec := httptest.NewRecorder()
		tenant.WriteError(rec, httptest.NewRequest("GET", "/", nil), tc.err)
		assert.Equal(t, tc.status, rec.Code)
		assert.Equal(t, tc.body, rec.Body.String(), "the client never sees the detail")
		assert.Equal(t, tc.retryAfter, rec.Header().Get("Retry-After"))
		assert.Equal(t, tc.status, tenant.StatusOf(tc.err))
	}
}
