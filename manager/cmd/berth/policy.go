package main

import (
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/slots"
)

func (c *cli) policyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Manage resource policies (admin)",
	}
	cmd.AddCommand(c.policyListCmd())
	return cmd
}

func (c *cli) policyListCmd() *cobra.Command {
	var pg page
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List resource policies (an empty limit is unlimited)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			pg.apply(q)
			list, err := cl.ListResourcePolicies(cmd.Context(), q)
			if err != nil {
				return err
			}
			// The columns of GET /v1/export/resource-policies.csv.
			v := view{data: list, columns: []string{"name"}}
			for _, n := range slots.Known {
				v.columns = append(v.columns, string(n))
			}
			v.columns = append(v.columns, "max_containers_per_session", "idle_timeout", "max_concurrent_sessions",
				"max_session_lifetime", "allowed_vfolder_hosts", "max_vfolder_size", "max_vfolder_count")
			for _, p := range list.Items {
				row := []string{p.Name}
				for _, n := range slots.Known {
					cell := ""
					if q, ok := p.TotalResourceSlots[n]; ok {
						cell = slots.Format(n, q).String()
					}
					row = append(row, cell)
				}
				row = append(row,
					fmtInt(p.MaxContainersPerSession), strconv.FormatInt(p.IdleTimeout, 10),
					fmtIntPtr(p.MaxConcurrentSessions), fmtIntPtr(p.MaxSessionLifetime),
					fmtList(p.AllowedVfolderHosts), fmtIntPtr(p.MaxVfolderSize), fmtInt(p.MaxVfolderCount),
				)
				v.rows = append(v.rows, row)
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
