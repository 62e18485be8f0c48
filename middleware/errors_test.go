package middleware_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tenantkit/tenant/middleware"
)

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		err        error
		status     int
		body       string
		retryAfter string
	}{
		{fmt.Errorf("%w: schema \"x\" does not exist", middleware.ErrUnknownTenant), 404, "unknown tenant\n", ""},
		{fmt.Errorf("%w: dial tcp: refused", middleware.ErrUnavailable), 503, "service unavailable\n", "5"},
		{fmt.Errorf("%w: retries exhausted", middleware.ErrConflict), 409, "conflict, please retry\n", ""},
		{fmt.Errorf("%w: 23505 duplicate key", middleware.ErrCommitFailed), 500, "commit failed\n", ""},
		{fmt.Errorf("%w: transaction 1234: read: connection reset", middleware.ErrCommitUnknown), 500, "commit outcome unknown\n", ""},
		{errors.New("anything else"), 500, "Internal Server Error\n", ""},
	} {
		rec := httptest.NewRecorder()
		middleware.WriteError(rec, httptest.NewRequest("GET", "/", nil), tc.err)
		assert.Equal(t, tc.status, rec.Code)
		assert.Equal(t, tc.body, rec.Body.String(), "the client never sees the detail")
		assert.Equal(t, tc.retryAfter, rec.Header().Get("Retry-After"))
		assert.Equal(t, tc.status, middleware.StatusOf(tc.err))
	}
}
