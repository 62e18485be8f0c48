package tenant

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// copyFrom is pgx's Conn.CopyFrom with the table's column types described afresh, in
// the request's transaction. pgx (in its default statement-cache mode) describes the
// table once per connection and caches the result under "select <columns> from
// <table>": the same text for every tenant and every schema version, so a connection
// that served another tenant, or this one before a migration, would encode the rows
// with the wrong column types (a timestamp for a timestamptz: hours off, silently).
// The fresh describe is an unnamed statement: one round trip, as pgx's first COPY on a
// connection costs, or none when the copy is the transaction's first call: it rides
// with the begin (session.CopyFrom). The encoding below follows pgx's (binary format, with pgx's
// fallback of parsing a string value as text first).
func copyFrom(ctx context.Context, conn *pgx.Conn, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	sql, cols := copyDescribeSQL(table, columns)
	sd, err := conn.Prepare(ctx, "", sql)
	if err != nil {
		return 0, fmt.Errorf("tenant: copy: describe %s: %w", table.Sanitize(), err)
	}
	return copyDescribed(ctx, conn, table, cols, sd, src)
}

// copyDescribeSQL is the statement whose description gives the columns' types, and the
// columns quoted.
func copyDescribeSQL(table pgx.Identifier, columns []string) (sql, cols string) {
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	cols = strings.Join(quoted, ", ")
	return "SELECT " + cols + " FROM " + table.Sanitize(), cols
}

// copyDescribed copies src into table's cols (quoted), typed by sd.
func copyDescribed(ctx context.Context, conn *pgx.Conn, table pgx.Identifier, cols string, sd *pgconn.StatementDescription, src pgx.CopyFromSource) (int64, error) {
	oids := make([]uint32, len(sd.Fields))
	for i, f := range sd.Fields {
		oids[i] = f.DataTypeOID
	}

	r, w := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.CloseWithError(writeCopyData(w, conn.TypeMap(), oids, src)) // nil closes cleanly
	}()
	tag, err := conn.PgConn().CopyFrom(ctx, r, "COPY "+table.Sanitize()+" ("+cols+") FROM STDIN BINARY")
	_ = r.Close()
	<-done
	return tag.RowsAffected(), err
}

// copySendSize keeps each write below what pgconn reads in one go (64 KiB less the
// message header), as pgx does, so writes are not split into pathological sizes.
const copySendSize = 65536 - 5

// writeCopyData writes src in PostgreSQL's binary COPY format.
func writeCopyData(w io.Writer, m *pgtype.Map, oids []uint32, src pgx.CopyFromSource) error {
	buf := append(make([]byte, 0, copySendSize), "PGCOPY\n\377\r\n\000"...)
	buf = binary.BigEndian.AppendUint32(buf, 0) // flags
	buf = binary.BigEndian.AppendUint32(buf, 0) // header extension length
	for src.Next() {
		values, err := src.Values()
		if err != nil {
			return err
		}
		if len(values) != len(oids) {
			return fmt.Errorf("tenant: copy: expected %d values, got %d values", len(oids), len(values))
		}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(oids)))
		for i, v := range values {
			if buf, err = appendCopyValue(m, buf, oids[i], v); err != nil {
				return err
			}
		}
		if len(buf) >= copySendSize {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if err := src.Err(); err != nil {
		return err
	}
	buf = binary.BigEndian.AppendUint16(buf, 0xffff) // trailer: -1
	_, err := w.Write(buf)
	return err
}

// appendCopyValue appends one field: its length (-1 for NULL) and binary value.
func appendCopyValue(m *pgtype.Map, buf []byte, oid uint32, v any) ([]byte, error) {
	start := len(buf)
	buf = binary.BigEndian.AppendUint32(buf, 0xffffffff) // NULL unless encoded below
	out, err := m.Encode(oid, pgtype.BinaryFormatCode, v, buf)
	if err != nil {
		if out, err = encodeViaText(m, buf, oid, v); err != nil {
			return nil, err
		}
	}
	if out == nil {
		return buf, nil
	}
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out, nil
}

// encodeViaText is pgx's fallback for a value with no binary encoding for the column's
// type (a string for a numeric, say): parse its text form, then encode that.
func encodeViaText(m *pgtype.Map, buf []byte, oid uint32, v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		text, err := m.Encode(oid, pgtype.TextFormatCode, v, nil)
		if err != nil {
			return nil, errors.New("tenant: copy: not a string and cannot be encoded as text")
		}
		s = string(text)
	}
	if typ, ok := m.TypeForOID(oid); ok {
		if _, isArray := typ.Codec.(*pgtype.ArrayCodec); isArray {
			var arr pgtype.Array[any]
			if err := m.Scan(oid, pgtype.TextFormatCode, []byte(s), &arr); err == nil {
				return m.Encode(oid, pgtype.BinaryFormatCode, arr, buf)
			}
		}
	}
	var parsed any
	if err := m.Scan(oid, pgtype.TextFormatCode, []byte(s), &parsed); err != nil {
		return nil, err
	}
	return m.Encode(oid, pgtype.BinaryFormatCode, parsed, buf)
}
