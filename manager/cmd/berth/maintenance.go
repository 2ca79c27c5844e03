package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

func (c *cli) maintenanceCmd() *cobra.Command {
	m := &cobra.Command{
		Use:   "maintenance",
		Short: "The manual's Maintenance page (superadmin)",
	}
	m.AddCommand(&cobra.Command{
		Use:   "recalculate-usage",
		Short: "Recompute occupancy and usage from the session records, compare with the agents, fix and list what differed",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			r, err := cl.RecalculateUsage(ctx)
			if err != nil {
				return err
			}
			if err := render(c.stdout, c.output, driftView(r)); err != nil {
				return err
			}
			if c.output == formatTable {
				fmt.Fprintf(c.stderr, "Checked %d agents, %d keypairs and %d usage rows: %d differences, %d fixed.\n",
					r.Checked.Agents, r.Checked.Keypairs, r.Checked.UsageDays, len(r.Drift), r.Fixed)
			}
			return nil
		}),
	})
	return m
}

func driftView(r *api.UsageRecalculation) view {
	v := view{data: r, columns: []string{"scope", "slot", "recorded", "actual"}}
	for _, d := range r.Drift {
		v.rows = append(v.rows, []string{d.Scope, d.Slot, d.Recorded.String(), d.Actual.String()})
	}
	return v
}
