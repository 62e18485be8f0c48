package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/tenantkit/tenant"
	"github.com/tenantkit/tenant/schema"
)

// tenants runs "tenants create|list|drop|suspend|resume|adopt".
func (c Command) tenants(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("tenants: %w: want create, list, drop, suspend, resume, adopt or repair-roles", ErrUsage)
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		return c.list(ctx, args)
	case "adopt":
		return c.with(ctx, func(mgr *tenant.Manager) error { return c.adopt(ctx, mgr.Provisioner(), args) })
	case "repair-roles":
		return c.with(ctx, func(mgr *tenant.Manager) error {
			n, err := mgr.Provisioner().RepairRoles(ctx)
			if err == nil {
				fmt.Fprintf(c.Stdout, "repaired the roles of %d tenants\n", n)
			}
			return err
		})
	case "create", "drop", "suspend", "resume":
	default:
		return fmt.Errorf("tenants: %w: unknown command %q (want create, list, drop, suspend, resume, adopt or repair-roles)", ErrUsage, sub)
	}
	if len(args) == 0 {
		return fmt.Errorf("tenants %s: %w: name at least one tenant", sub, ErrUsage)
	}
	// Every name is checked before anything happens: one bad name, nothing done (the
	// Manager's own check, with its reserved names, follows in each call).
	var bad []error
	for _, name := range args {
		if err := schema.Validate(name); err != nil {
			bad = append(bad, err)
		}
	}
	if len(bad) > 0 {
		return errors.Join(bad...)
	}
	return c.with(ctx, func(mgr *tenant.Manager) error {
		do, done := map[string]func(context.Context, string) error{
			"create": mgr.Provisioner().Create, "drop": mgr.Drop, "suspend": mgr.Suspend, "resume": mgr.Resume,
		}[sub], map[string]string{"create": "created", "drop": "dropped", "suspend": "suspended", "resume": "resumed"}[sub]
		var failed []error
		for _, name := range args {
			if err := do(ctx, name); err != nil {
				failed = append(failed, err)
				continue
			}
			fmt.Fprintf(c.Stdout, "%s %s\n", done, name)
		}
		return errors.Join(failed...)
	})
}

// list prints the tenants, a name a line, or with --long a table.
func (c Command) list(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("tenants list", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	ns := fs.String("namespace", "", "only tenants named `NS`-*")
	long := fs.Bool("long", false, "state, version and creation time too")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("tenants list: %w: %w", ErrUsage, err)
	}
	return c.with(ctx, func(mgr *tenant.Manager) error {
		infos, err := mgr.Provisioner().ListInfo(ctx, *ns)
		if err != nil {
			return err
		}
		if !*long {
			for _, in := range infos {
				fmt.Fprintln(c.Stdout, in.Name)
			}
			return nil
		}
		w := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tSTATE\tVERSION\tCREATED")
		for _, in := range infos {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", in.Name, in.State, in.Version, in.Created.UTC().Format(time.DateTime))
		}
		return w.Flush()
	})
}

// adopt registers tenant schemas made by a release before the tenant registry: the
// names given, or every one Adoptable finds. Each name is handled on its own.
func (c Command) adopt(ctx context.Context, p *schema.Provisioner, names []string) error {
	if len(names) == 0 {
		var err error
		if names, err = p.Adoptable(ctx); err != nil {
			return err
		}
		if len(names) == 0 {
			fmt.Fprintln(c.Stdout, "nothing to adopt")
			return nil
		}
	}
	var failed []error
	for _, name := range names {
		if err := p.Adopt(ctx, name); err != nil {
			failed = append(failed, err)
			continue
		}
		fmt.Fprintf(c.Stdout, "adopted %s\n", name)
	}
	return errors.Join(failed...)
}
