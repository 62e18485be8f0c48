package middleware

import (
	"errors"
	"net/http"
	"strconv"
)

// Errors the lifecycle hands to an ErrorHandler. Each maps to one answer; the detail
// (which tenant, which SQL error) goes to the log, never to the client.
var (
	// ErrUnknownTenant: no tenant in the request, an invalid name, a schema that does
	// not exist, or one the admission policy refused. 404 "unknown tenant" for all of
	// them, so clients cannot probe which.
	ErrUnknownTenant = errors.New("unknown tenant")
	// ErrUnavailable: the database could not be reached, the pool timed out, or
	// provisioning failed. 503 with Retry-After.
	ErrUnavailable = errors.New("service unavailable")
	// ErrConflict: the transaction kept failing to serialize and retries ran out. 409.
	ErrConflict = errors.New("conflict, please retry")
	// ErrCommitFailed: the handler succeeded but COMMIT did not, so its response was
	// dropped. 500.
	ErrCommitFailed = errors.New("commit failed")
	// ErrCommitUnknown: the connection failed while COMMIT ran and whether it
	// committed cannot be learned (the network, not the database, failed), so the
	// response was dropped and the request is not run again. 500 "commit outcome
	// unknown": a client should look before it sends the request again.
	ErrCommitUnknown = errors.New("commit outcome unknown")
)

// RetryAfterSeconds is the Retry-After sent with 503 answers.
const RetryAfterSeconds = 5

// ErrorHandler renders a lifecycle error; err wraps one of the errors above.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

// StatusOf returns the HTTP status for a lifecycle error (500 for anything else).
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
