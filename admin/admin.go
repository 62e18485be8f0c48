// Package admin is a tenant administration command that an application embeds in its
// own binary, instead of copying one:
//
//	myapp tenants create NAME...             provision tenants (every name checked first)
//	myapp tenants list [--namespace NS] [--long]
//	myapp tenants drop|suspend|resume NAME...
//	myapp tenants adopt [NAME...]            register schemas made before the registry
//	myapp tenants repair-roles               make or mend every tenant's login role (Config.Roles)
//	myapp migrate [--parallel N] [--canary N] [--namespace NS]
//	myapp sql TENANT 'SQL'                   run SQL in one tenant's transaction
//
// The application wires it in its main:
//
//	case "tenants", "migrate", "sql":
//		err = admin.Command{Open: openManager, Stdout: os.Stdout, Stderr: os.Stderr}.Run(ctx, os.Args[1:])
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tenantkit/tenant"
)

// Usage lists the commands, for an application's help text.
const Usage = `  tenants create NAME...                  provision tenants
  tenants list [--namespace NS] [--long]  list tenants (--long: state, version, created)
  tenants drop NAME...                    drop tenants and all their data
  tenants suspend|resume NAME...          stop serving tenants (data kept), serve them again
  tenants adopt [NAME...]                 register tenants made before the tenant registry
  tenants repair-roles                    make or mend every tenant's login role, set its
                                          password from the first secret (a rotation)
  migrate [--parallel N] [--canary N] [--namespace NS]
                                          bring every tenant to the latest migration
  sql TENANT 'SQL'                        run SQL in one tenant's transaction, print the rows
`

// ErrUsage is wrapped by the error of a command line that names no known command or
// lacks its arguments; nothing was done.
var ErrUsage = errors.New("usage")

// Command runs one administration command line. Open, Stdout and Stderr are required.
type Command struct {
	// Open returns the Manager to administer and a function that releases it. It is
	// called only once the command line is checked: a bad name never connects.
	Open func(ctx context.Context) (mgr *tenant.Manager, release func(), err error)
	// Stdout gets results; Stderr gets progress and each failure as it happens.
	Stdout, Stderr io.Writer
	// Progress makes migrate's progress display on Stderr. Default Lines: a plain line
	// at most once a second. An application may draw a bar on a terminal instead.
	Progress func(w io.Writer) Progress
}

// Run runs args, e.g. {"tenants", "create", "acme"}. Each name of a multi-name command
// is done on its own: the error joins the failures, and the others are still done.
func (c Command) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("admin: %w: want tenants, migrate or sql", ErrUsage)
	}
	switch args[0] {
	case "tenants":
		return c.tenants(ctx, args[1:])
	case "migrate":
		return c.migrate(ctx, args[1:])
	case "sql":
		return c.sql(ctx, args[1:])
	}
	return fmt.Errorf("admin: %w: unknown command %q (want tenants, migrate or sql)", ErrUsage, args[0])
}

// with opens the Manager, runs fn, and releases it.
func (c Command) with(ctx context.Context, fn func(*tenant.Manager) error) error {
	mgr, release, err := c.Open(ctx)
	if err != nil {
		return err
	}
	defer release()
	return fn(mgr)
}
