package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

func (c *cli) resourcesCmd() *cobra.Command {
	var accessKey string
	cmd := &cobra.Command{
		Use:   "resources",
		Short: "Show the resource indicator: what your keypair may still start",
		Long: "Show, per slot, the keypair's policy limit, what its sessions occupy, what remains, the\n" +
			"cluster's total and free capacity, and what one new session could get now\n" +
			"(allocatable = the smaller of remaining and the most free on one agent).\n" +
			"Admins may name any keypair with --access-key.",
		Args: cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			ind, err := cl.MyResources(ctx, accessKey)
			if err != nil {
				return err
			}
			if c.output == formatTable {
				most := infinity
				if ind.Concurrency.Max != nil {
					most = strconv.Itoa(*ind.Concurrency.Max)
				}
				fmt.Fprintf(c.stdout, "Keypair %s, policy %s, concurrent sessions %d of %s\n\n",
					ind.AccessKey, ind.ResourcePolicy, ind.Concurrency.Used, most)
			}
			return render(c.stdout, c.output, indicatorView(ind, c.output == formatTable))
		}),
	}
	cmd.Flags().StringVar(&accessKey, "access-key", "", "show this keypair instead of your own (admins: any keypair)")
	return cmd
}

// indicatorView is one row per slot. For people, memory is shown in binary
// units; for csv every figure is the wire decimal (bytes, cores, shares).
func indicatorView(ind *api.ResourceIndicator, human bool) view {
	v := view{data: ind, columns: []string{"slot", "limit", "occupied", "remaining",
		"cluster_total", "cluster_free", "largest_agent_free", "allocatable"}}
	amount := func(n slots.Name, q int64) string {
		if human && n == slots.Mem {
			return fmtSize(q)
		}
		return slots.Format(n, q).String()
	}
	limit := func(l slots.Limits, n slots.Name) string {
		q, limited := l[n]
		if !limited && human {
			return infinity
		}
		if !limited {
			return flagUnlimited
		}
		return amount(n, q)
	}
	for _, n := range slots.Known {
		v.rows = append(v.rows, []string{string(n), limit(ind.Limits, n), amount(n, ind.Occupied[n]),
			limit(ind.Remaining, n), amount(n, ind.Cluster.Total[n]), amount(n, ind.Cluster.Free[n]),
			amount(n, ind.Cluster.LargestAgentFree[n]), amount(n, ind.Allocatable[n])})
	}
	return v
}
