package tenantsql

import (
	"database/sql/driver"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tenantkit/tenant/tenantctx"
)

// resultFormats asks for binary results of the types converted from binary below and
// text for every other type, which any type (an enum, a domain, an extension's type)
// has: pgx/v5/stdlib's choice, so that results scan as they do with it.
var resultFormats = pgx.QueryResultFormatsByOID{
	pgtype.BoolOID:        pgx.BinaryFormatCode,
	pgtype.ByteaOID:       pgx.BinaryFormatCode,
	pgtype.CIDOID:         pgx.BinaryFormatCode,
	pgtype.DateOID:        pgx.BinaryFormatCode,
	pgtype.Float4OID:      pgx.BinaryFormatCode,
	pgtype.Float8OID:      pgx.BinaryFormatCode,
	pgtype.Int2OID:        pgx.BinaryFormatCode,
	pgtype.Int4OID:        pgx.BinaryFormatCode,
	pgtype.Int8OID:        pgx.BinaryFormatCode,
	pgtype.OIDOID:         pgx.BinaryFormatCode,
	pgtype.TimestampOID:   pgx.BinaryFormatCode,
	pgtype.TimestamptzOID: pgx.BinaryFormatCode,
	pgtype.XIDOID:         pgx.BinaryFormatCode,
}

// rows are a query's rows as database/sql reads them. The first is read before
// QueryContext returns, so that a failed statement fails there, as database/sql
// clients expect, and not at the end of the rows.
type rows struct {
	rows    pgx.Rows
	types   *pgtype.Map
	convert []func(src []byte) (driver.Value, error)
	first   bool // the first row was read and not yet given
	more    bool
	columns []string
}

func newRows(pgRows pgx.Rows, types *pgtype.Map) (*rows, error) {
	r := &rows{rows: pgRows, types: types, first: true, more: pgRows.Next()}
	if err := pgRows.Err(); err != nil {
		pgRows.Close()
		return nil, wrapped(err)
	}
	return r, nil
}

func (r *rows) Columns() []string {
	if r.columns == nil {
		for _, fd := range r.rows.FieldDescriptions() {
			r.columns = append(r.columns, fd.Name)
		}
	}
	return r.columns
}

func (r *rows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}

func (r *rows) Next(dest []driver.Value) error {
	more := r.more
	if r.first {
		r.first = false
	} else {
		more = r.rows.Next()
	}
	if !more {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	if r.convert == nil {
		r.plan()
	}
	raws := r.rows.RawValues()
	if len(raws) != len(r.convert) { // the rows were closed under us: the request ended
		if err := r.rows.Err(); err != nil {
			return err
		}
		return tenantctx.ErrSessionEnded
	}
	for i, raw := range raws {
		if raw == nil {
			dest[i] = nil
			continue
		}
		v, err := r.convert[i](raw)
		if err != nil {
			return fmt.Errorf("tenantsql: column %q: %w", r.rows.FieldDescriptions()[i].Name, err)
		}
		dest[i] = v
	}
	return nil
}

// plan chooses each column's conversion to a driver.Value, by its type and format.
func (r *rows) plan() {
	fields := r.rows.FieldDescriptions()
	r.convert = make([]func([]byte) (driver.Value, error), len(fields))
	for i, fd := range fields {
		r.convert[i] = converter(r.types, fd.DataTypeOID, fd.Format)
	}
}

func converter(m *pgtype.Map, oid uint32, format int16) func([]byte) (driver.Value, error) {
	switch oid {
	case pgtype.BoolOID:
		return scanned(m, oid, format, func(v bool) (driver.Value, error) { return v, nil })
	case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.XMLOID:
		return scanned(m, oid, format, func(v []byte) (driver.Value, error) { return v, nil })
	case pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID:
		return scanned(m, oid, format, pgtype.Uint32.Value)
	case pgtype.DateOID:
		return scanned(m, oid, format, pgtype.Date.Value)
	case pgtype.Float4OID:
		return scanned(m, oid, format, func(v float32) (driver.Value, error) { return float64(v), nil })
	case pgtype.Float8OID:
		return scanned(m, oid, format, func(v float64) (driver.Value, error) { return v, nil })
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		return scanned(m, oid, format, func(v int64) (driver.Value, error) { return v, nil })
	case pgtype.TimestampOID:
		return scanned(m, oid, format, pgtype.Timestamp.Value)
	case pgtype.TimestamptzOID:
		return scanned(m, oid, format, pgtype.Timestamptz.Value)
	default:
		return scanned(m, oid, format, func(v string) (driver.Value, error) { return v, nil })
	}
}

// scanned converts a value by scanning it into a T with pgx's plan, then as.
func scanned[T any](m *pgtype.Map, oid uint32, format int16, as func(T) (driver.Value, error)) func([]byte) (driver.Value, error) {
	var v T
	plan := m.PlanScan(oid, format, &v)
	return func(src []byte) (driver.Value, error) {
		var zero T
		v = zero
		if err := plan.Scan(src, &v); err != nil {
			return nil, err
		}
		return as(v)
	}
}

// ColumnTypeDatabaseTypeName is the type's name in upper case (INT4, TEXT), or its
// OID for a type pgx does not know.
func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	oid := r.rows.FieldDescriptions()[i].DataTypeOID
	if t, ok := r.types.TypeForOID(oid); ok {
		return strings.ToUpper(t.Name)
	}
	return strconv.FormatUint(uint64(oid), 10)
}

// ColumnTypeScanType is the Go type of the column's driver.Value.
func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	switch r.rows.FieldDescriptions()[i].DataTypeOID {
	case pgtype.BoolOID:
		return reflect.TypeFor[bool]()
	case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.XMLOID:
		return reflect.TypeFor[[]byte]()
	case pgtype.Float4OID, pgtype.Float8OID:
		return reflect.TypeFor[float64]()
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID:
		return reflect.TypeFor[int64]()
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		return reflect.TypeFor[time.Time]()
	default:
		return reflect.TypeFor[string]()
	}
}
