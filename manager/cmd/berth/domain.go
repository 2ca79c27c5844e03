package main

import (
	"net/url"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
)

func domainView(data any, ds []api.Domain) view {
	v := view{data: data, columns: []string{"name", "description", "is_active", "created_at"}}
	for _, d := range ds {
		v.rows = append(v.rows, []string{d.Name, d.Description, fmtBool(d.IsActive), fmtTime(d.CreatedAt)})
	}
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			pg.apply(q)
			list, err := cl.ListDomains(cmd.Context(), q)
			if err != nil {
				return err
			}
			if err := render(c.stdout, c.output, domainView(list, list.Items)); err != nil {
				return err
			}
			c.printNextCursor(list.NextCursor)
			return nil
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Name = args[0]
			cl, err := c.client()
			if err != nil {
				return err
			}
			d, err := cl.CreateDomain(cmd.Context(), in)
			if err != nil {
				return err
			}
			v := domainView(d, []api.Domain{*d})
			v.single = true
			return render(c.stdout, c.output, v)
		},
	}
	cmd.Flags().StringVar(&in.Description, "description", "", "free text about the domain")
	return cmd
}
