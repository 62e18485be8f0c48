package tenant

import (
	"errors"
	"net/http"
	"strconv"
)

// RetryAfterSeconds is the Retry-After WriteError sends with 503 answers.
const RetryAfterSeconds = 5

// ErrorHandler renders a lifecycle error (Config.ErrorHandler); err wraps one of the
// lifecycle errors, or is another failure of the request's end (500).
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

// StatusOf returns the HTTP status for a lifecycle error: 404 ErrUnknownTenant, 503
// ErrUnavailable, 409 ErrConflict, 500 for anything else.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, ErrUnknownTenant):
		return http.StatusNotFound
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}

// WriteError is the default ErrorHandler: the status from StatusOf and a short plain
// text body ("unknown tenant", "service unavailable", ...), Retry-After with 503.
func WriteError(w http.ResponseWriter, _ *http.Request, err error) {
	status := StatusOf(err)
	msg := http.StatusText(status)
	for _, known := range []error{ErrUnknownTenant, ErrUnavailable, ErrConflict, ErrCommitUnknown, ErrCommitFailed} {
		if errors.Is(err, known) {
			msg = known.Error()
			break
		}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
	http.Error(w, msg, status)
}
