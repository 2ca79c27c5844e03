package main

import (
	"context"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// usageFlags are the query of GET /v1/usage and its CSV export.
type usageFlags struct{ from, to, groupBy, step string }

func (f *usageFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.from, "from", "", "first day, YYYY-MM-DD UTC (default: 29 days before --to)")
	cmd.Flags().StringVar(&f.to, "to", "", "last day, YYYY-MM-DD UTC (default: today)")
	cmd.Flags().StringVar(&f.groupBy, "group-by", "", "user (default), group, domain or keypair")
	cmd.Flags().StringVar(&f.step, "step", "", "day (default) or month")
}

func (f *usageFlags) query(q url.Values) {
	setIf(q, "from", f.from)
	setIf(q, "to", f.to)
	setIf(q, "group_by", f.groupBy)
	setIf(q, "step", f.step)
}

func (c *cli) usageCmd() *cobra.Command {
	var f usageFlags
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show usage per day or month and per user, group, domain or keypair",
		Long: "Show what was allocated (slot-seconds: cpu in core-seconds, mem in byte-seconds; a\n" +
			"running session counts up to now), how many sessions started, finished and failed,\n" +
			"and what agents measured (CPU seconds, the largest working set of one session).\n" +
			"Admins see their domain's users, superadmins everyone, others their own.\n" +
			"berth export usage downloads the same as the manager's CSV.",
		Example: "  berth usage --from 2026-03-01 --to 2026-03-31 --group-by group --step month",
		Args:    cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			q := url.Values{}
			f.query(q)
			u, err := cl.Usage(ctx, q)
			if err != nil {
				return err
			}
			return render(c.stdout, c.output, usageView(u))
		}),
	}
	f.add(cmd)
	return cmd
}

// usageView is one row per item, the columns of the manager's CSV.
func usageView(u *api.Usage) view {
	v := view{data: u, columns: []string{"period", "group_by", "key", "allocated.cpu", "allocated.mem", "allocated.cuda.device",
		"allocated.cuda.shares", "sessions.started", "sessions.finished", "sessions.failed", "measured.cpu_seconds", "measured.peak_mem_bytes"}}
	for _, it := range u.Items {
		v.rows = append(v.rows, []string{it.Period, it.GroupBy, it.Key, it.Allocated.CPU.String(), it.Allocated.Mem.String(),
			it.Allocated.CUDADevice.String(), it.Allocated.CUDAShares.String(), strconv.FormatInt(it.Sessions.Started, 10),
			strconv.FormatInt(it.Sessions.Finished, 10), strconv.FormatInt(it.Sessions.Failed, 10), it.Measured.CPUSeconds.String(),
			strconv.FormatInt(it.Measured.PeakMemBytes, 10)})
	}
	return v
}

// withUsageExport adds "export usage" to the export command.
func (c *cli) withUsageExport(export *cobra.Command) *cobra.Command {
	export.AddCommand(c.exportKindCmd(exportKind{
		kind:  "usage",
		short: "Export usage as CSV (the query of berth usage)",
		filters: func(cmd *cobra.Command) func(url.Values) {
			var f usageFlags
			f.add(cmd)
			return f.query
		},
	}))
	return export
}
