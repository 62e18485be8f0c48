package admin

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/schema"
	"github.com/tenantkit/tenant/tenantctx"
)

// sql runs "sql TENANT 'SQL'": one statement in the tenant's transaction, as
// Manager.Run runs it (its search_path, committed when it succeeds), printing the rows
// as a table, or the command tag for a statement without rows.
func (c Command) sql(ctx context.Context, args []string) error {
	if len(args) != 2 || strings.TrimSpace(args[1]) == "" {
		return fmt.Errorf("sql: %w: want sql TENANT 'SQL'", ErrUsage)
	}
	name, query := args[0], args[1]
	if err := schema.Validate(name); err != nil {
		return err
	}
	return c.with(ctx, func(mgr *tenant.Manager) error {
		var out strings.Builder // printed after the commit: nothing for a rolled-back run
		err := mgr.Run(ctx, name, func(ctx context.Context) error {
			out.Reset() // a conflict runs it again
			rows, err := tenantctx.Session(ctx).Query(ctx, query, pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				return err
			}
			defer rows.Close()
			w := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
			fields := rows.FieldDescriptions()
			for i, f := range fields {
				fmt.Fprint(w, f.Name, sep(i, len(fields)))
			}
			for rows.Next() {
				values, err := rows.Values()
				if err != nil {
					return err
				}
				for i, v := range values {
					fmt.Fprint(w, format(v), sep(i, len(values)))
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if len(fields) == 0 {
				fmt.Fprintln(w, rows.CommandTag().String())
			}
			return w.Flush()
		})
		if err != nil {
			return fmt.Errorf("sql %s: %w", name, err)
		}
		_, err = fmt.Fprint(c.Stdout, out.String())
		return err
	})
}

func sep(i, n int) string {
	if i == n-1 {
		return "\n"
	}
	return "\t"
}

func format(v any) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprint(v)
}
