package locale

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Expr is the SQL for a translated JSONB column's value in a locale, with the
// same fallbacks as Text.Get, for selecting, filtering and ordering in SQL. The locale
// chain travels as one text[] parameter; no tag is ever spliced into SQL.
//
//	title := locale.Localized(ctx, "title")
//	rows, err := db.Query(ctx, "SELECT id, "+title.SQL(1)+" FROM documents WHERE "+
//		title.SQL(1)+" ILIKE $2 ORDER BY "+title.SQL(1), title.Arg(), "%report%")
type Expr struct {
	column string   // quoted
	chain  []string // keys to try, in order
}

// LocalizedFor builds an Expr for an explicit chain (see Chain). column is the
// column name, qualified by its parts ("d", "title" → "d"."title").
func LocalizedFor(chain []string, column ...string) Expr {
	return Expr{column: pgx.Identifier(column).Sanitize(), chain: chain}
}

// Localized builds an Expr for the context's locale and default locale.
func Localized(ctx context.Context, column ...string) Expr {
	return LocalizedFor(Chain(FromContext(ctx), FallbackFromContext(ctx)), column...)
}

// SQL returns the expression, reading the chain from parameter $param:
// coalesce("title"->>(($1::text[])[1]), "title"->>(($1::text[])[2]), ...).
func (l Expr) SQL(param int) string {
	if len(l.chain) == 0 {
		return "NULL::text"
	}
	parts := make([]string, len(l.chain))
	for i := range l.chain {
		parts[i] = fmt.Sprintf("%s->>(($%d::text[])[%d])", l.column, param, i+1)
	}
	return "coalesce(" + strings.Join(parts, ", ") + ")"
}

// Arg is the value for the parameter SQL refers to.
func (l Expr) Arg() []string { return append([]string(nil), l.chain...) }
