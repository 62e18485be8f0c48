package tenant

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant/tenantctx"
)

// Begin starts a savepoint inside the request's transaction. Errors inside it count
// like any other: a conflict there runs the request again even if the savepoint is
// rolled back, since the transaction's view may no longer be consistent. SAVEPOINT,
// RELEASE and ROLLBACK TO go with the next statement, in its round trip (a RELEASE
// left at the end goes with COMMIT, which releases it): an error of theirs is that
// statement's.
func (s *session) Begin(ctx context.Context) (pgx.Tx, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, tenantctx.ErrSessionEnded
	}
	if s.batchOpen != nil {
		return nil, errConnBusy
	}
	if s.conn != nil {
		if _, err := s.use(ctx, ""); err != nil {
			return nil, err
		}
	}
	s.savepoint++
	sp := &savepoint{s: s, name: "tenant_sp_" + strconv.FormatInt(s.savepoint, 10)}
	s.pending = append(s.pending, "SAVEPOINT "+sp.name)
	return sp, nil
}

// endSavepoint queues RELEASE or ROLLBACK TO (verb) of a savepoint. A savepoint
// whose SAVEPOINT is still queued had no statement: both go.
func (s *session) endSavepoint(ctx context.Context, verb, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return tenantctx.ErrSessionEnded
	}
	if n := len(s.pending); n > 0 && s.pending[n-1] == "SAVEPOINT "+name {
		s.pending = s.pending[:n-1]
		return nil
	}
	s.pending = append(s.pending, verb+name)
	return nil
}

// flushPending sends the queued savepoint commands on their own, for statements the
// session does not send itself (pgx's), and before a COMMIT that must see a ROLLBACK
// TO. The first error is returned, and noted.
func (s *session) flushPending(ctx context.Context, c *pgx.Conn) error {
	if len(s.pending) == 0 {
		return nil
	}
	script := strings.Join(s.pending, "; ")
	s.pending = s.pending[:0]
	_, err := c.Exec(ctx, script)
	s.note(err)
	return err
}

// onlyReleases reports whether every queued savepoint command is a RELEASE: COMMIT
// and ROLLBACK make them moot.
func (s *session) onlyReleases() bool {
	for _, q := range s.pending {
		if !strings.HasPrefix(q, releaseSavepoint) {
			return false
		}
	}
	return true
}
