package locale

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// ErrNoHstore is returned by RegisterHstore when the database has no hstore type in the
// shared "extensions" schema.
var ErrNoHstore = errors.New("locale: type extensions.hstore does not exist (is the hstore extension provisioned?)")

// RegisterHstore teaches a connection the hstore type (installed in the shared
// "extensions" schema) so Text can be written to and read from hstore columns. Use it
// as the pool's AfterConnect hook:
//
//	pool.WithConfig(func(c *pgxpool.Config) { c.AfterConnect = locale.RegisterHstore })
func RegisterHstore(ctx context.Context, conn *pgx.Conn) error {
	var oid *uint32
	if err := conn.QueryRow(ctx, "SELECT to_regtype('extensions.hstore')::oid").Scan(&oid); err != nil {
		return fmt.Errorf("locale: look up hstore: %w", err)
	}
	if oid == nil {
		return ErrNoHstore
	}
	// hstore's OID differs per database, so pgx cannot know it in advance.
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "hstore", OID: *oid, Codec: pgtype.HstoreCodec{}})
	return nil
}
