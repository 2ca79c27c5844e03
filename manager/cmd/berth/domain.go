package main

import (
	"net/url"

	"github.com/spf13/cobra"
)

func (c *cli) domainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domain",
		Short: "Manage domains (admin)",
	}
	cmd.AddCommand(c.domainListCmd())
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
			v := view{data: list, columns: []string{"name", "description", "is_active", "created_at"}}
			for _, d := range list.Items {
				v.rows = append(v.rows, []string{d.Name, d.Description, fmtBool(d.IsActive), fmtTime(d.CreatedAt)})
			}
			if err := render(c.stdout, c.output, v); err != nil {
				return err
			}
			c.printNextCursor(list.NextCursor)
			return nil
		},
	}
	pg.flags(cmd)
	return cmd
}
