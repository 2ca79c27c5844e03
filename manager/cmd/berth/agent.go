package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

// agentColumns are what berth agent list shows; get adds the node's facts.
var agentColumns = []string{"id", "status", "schedulable", "approved", "simulated", "address", "capacity", "occupied",
	"used_cpu_seconds", "used_mem", "containers", "images", "version", "last_heartbeat_at"}

// agentViewer renders agents; for people memory is in binary units, for
// csv and json every figure is the wire's (bytes, cores).
func (c *cli) agentViewer(detail bool) func(data any, agents []api.Agent) view {
	human := c.output == formatTable
	return func(data any, agents []api.Agent) view {
		v := view{data: data, columns: agentColumns, single: detail}
		if detail {
			v.columns = append(append([]string{}, agentColumns...), "hostname", "arch", "kernel", "cpus", "memory",
				"containerd_version", "cgroup_version", "image_names", "gpus", "folder_hosts", "project_quota_hosts")
		}
		for _, a := range agents {
			mem := strconv.FormatInt(a.Used.MemoryWorkingSet, 10)
			cpu := strconv.FormatFloat(a.Used.CPUSeconds, 'f', -1, 64)
			if human {
				mem = fmtSize(a.Used.MemoryWorkingSet)
				cpu = fmtSeconds(int64(math.Round(a.Used.CPUSeconds)))
			}
			row := []string{a.ID, a.Status, fmtBool(a.Schedulable), fmtBool(a.Approved), fmtBool(a.Simulated), a.Address, slotsCell(a.Capacity, human),
				slotsCell(a.Occupied, human), cpu, mem,
				fmtInt(a.Used.Containers), fmtInt(len(a.Images)), a.Version, fmtTime(a.LastHeartbeatAt)}
			if detail {
				names := make([]string, len(a.Images))
				for i, im := range a.Images {
					names[i] = im.Name
				}
				n := a.Node
				memory := strconv.FormatInt(n.MemoryBytes, 10)
				if human {
					memory = fmtSize(n.MemoryBytes)
				}
				row = append(row, n.Hostname, n.Arch, n.Kernel, fmtInt(n.CPUs), memory,
					n.ContainerdVersion, fmtInt(n.CgroupVersion), fmtList(names), gpusCell(a.GPUs),
					fmtList(a.FolderHosts), fmtList(a.ProjectQuotaHosts))
			}
			v.rows = append(v.rows, row)
		}
		return v
	}
}

// gpusCell is "GPU-0 0.5/1 fake, GPU-1 0/1 fake": each GPU's allocated
// and total shares.
func gpusCell(gpus []api.AgentGPU) string {
	parts := make([]string, len(gpus))
	for i, g := range gpus {
		parts[i] = fmt.Sprintf("%s %s/%s", g.UUID, strconv.FormatFloat(g.SharesAllocated, 'f', -1, 64),
			strconv.FormatFloat(g.SharesTotal, 'f', -1, 64))
		if g.Fake {
			parts[i] += " fake"
		}
	}
	return strings.Join(parts, ", ")
}

// slotsCell is "cpu=8 mem=16GiB" (people) or "cpu=8 mem=17179869184",
// the slots that are not zero in the usual order.
func slotsCell(s slots.Slots, human bool) string {
	var parts []string
	for _, n := range slots.Known {
		q := s[n]
		if q == 0 {
			continue
		}
		text := slots.Format(n, q).String()
		if human && n == slots.Mem {
			text = fmtSize(q)
		}
		parts = append(parts, string(n)+"="+text)
	}
	return strings.Join(parts, " ")
}

func (c *cli) agentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "See the cluster's agents (nodes) (admin); take them in or out of scheduling, approve them and issue their join tokens (superadmin)",
	}
	cmd.AddCommand(c.agentListCmd(), c.agentGetCmd(), c.agentSchedulableCmd(), c.agentApproveCmd(), c.agentTokenCmd())
	return cmd
}

func (c *cli) agentListCmd() *cobra.Command {
	var (
		status string
		pg     page
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List agents with capacity, occupancy, measured use and liveness",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			q := pg.query()
			setIf(q, "status", strings.ToUpper(status))
			return showList(c, c.agentViewer(false))(cl.ListAgents(ctx, q))
		}),
	}
	cmd.Flags().StringVar(&status, "status", "", "only agents in this status: ALIVE, DISCONNECTED or LOST")
	pg.flags(cmd)
	return cmd
}

func (c *cli) agentGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one agent with its node's facts",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, c.agentDetail)(cl.GetAgent(ctx, args[0]))
		}),
	}
}

func (c *cli) agentDetail(a *api.Agent) view { return c.agentViewer(true)(a, []api.Agent{*a}) }

func (c *cli) agentSchedulableCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schedulable ID true|false",
		Short: "Let the scheduler place new sessions on the agent, or stop it (superadmin; running sessions stay)",
		Args:  cobra.ExactArgs(2),
		PreRunE: func(_ *cobra.Command, args []string) error {
			if _, err := strconv.ParseBool(args[1]); err != nil {
				return fmt.Errorf("schedulable must be true or false, not %q", args[1])
			}
			return nil
		},
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			on, _ := strconv.ParseBool(args[1]) // checked in PreRunE
			return show(c, c.agentDetail)(cl.SetAgentSchedulable(ctx, args[0], on))
		}),
	}
}
