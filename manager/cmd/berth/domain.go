package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

func domainView(data any, ds []api.Domain) view {
	v := view{data: data, columns: []string{"name", "description", "is_active", "created_at"}}
	for _, d := range ds {
		v.rows = append(v.rows, []string{d.Name, d.Description, fmtBool(d.IsActive), fmtTime(d.CreatedAt)})
	}
	return v
}

func domainDetail(d *api.Domain) view {
	v := domainView(d, []api.Domain{*d})
	v.single = true
	return v
}

func (c *cli) domainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domain",
		Short: "Manage domains (admin)",
	}
	cmd.AddCommand(c.domainListCmd(), c.domainCreateCmd())
	return cmd
}

func (c *cli) domainListCmd() *cobra.Command {
	var pg page
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List domains",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return showList(c, domainView)(cl.ListDomains(ctx, pg.query()))
		}),
	}
	pg.flags(cmd)
	return cmd
}

func (c *cli) domainCreateCmd() *cobra.Command {
	var in api.DomainCreate
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a domain (superadmin)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			in.Name = args[0]
			return show(c, domainDetail)(cl.CreateDomain(ctx, in))
		}),
	}
	cmd.Flags().StringVar(&in.Description, "description", "", "free text about the domain")
	return cmd
}
