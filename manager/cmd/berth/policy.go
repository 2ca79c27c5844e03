package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

// policyViewer shows policies with the columns of GET
// /v1/export/resource-policies.csv. In csv an empty cell is unlimited and
// figures are the wire's (bytes, seconds); for people (table) unlimited is
// ∞, memory and sizes are binary units, times durations (0 idle timeout:
// never). Folder hosts are joined with ';'.
func (c *cli) policyViewer(detail bool) func(data any, ps []api.ResourcePolicy) view {
	human := c.output == formatTable
	return func(data any, ps []api.ResourcePolicy) view {
		v := view{data: data, columns: []string{"name"}, single: detail}
		for _, n := range slots.Known {
			v.columns = append(v.columns, string(n))
		}
		v.columns = append(v.columns, "max_containers_per_session", "idle_timeout", "max_concurrent_sessions",
			"max_session_lifetime", "allowed_vfolder_hosts", "max_vfolder_size", "max_vfolder_count", "allow_root", "allowed_images")
		if detail {
			v.columns = append(v.columns, "max_disconnect", "max_disconnect_effective", "created_at", "modified_at")
		}
		for _, p := range ps {
			row := []string{p.Name}
			for _, n := range slots.Known {
				q, limited := p.TotalResourceSlots[n]
				switch {
				case !limited && human:
					row = append(row, infinity)
				case !limited:
					row = append(row, "")
				case human && n == slots.Mem:
					row = append(row, fmtSize(q))
				default:
					row = append(row, slots.Format(n, q).String())
				}
			}
			idle, concurrent := strconv.FormatInt(p.IdleTimeout, 10), fmtIntPtr(p.MaxConcurrentSessions)
			lifetime, size := fmtIntPtr(p.MaxSessionLifetime), fmtIntPtr(p.MaxVfolderSize)
			if human {
				idle = "never"
				if p.IdleTimeout > 0 {
					idle = fmtSeconds(p.IdleTimeout)
				}
				if p.MaxConcurrentSessions == nil {
					concurrent = infinity
				}
				lifetime = infinity
				if p.MaxSessionLifetime != nil {
					lifetime = fmtSeconds(*p.MaxSessionLifetime)
				}
				size = fmtSizePtr(p.MaxVfolderSize)
			}
			row = append(row, fmtInt(p.MaxContainersPerSession), idle, concurrent, lifetime,
				strings.Join(p.AllowedVfolderHosts, ";"), size, fmtInt(p.MaxVfolderCount), strconv.FormatBool(p.AllowRoot), strings.Join(p.AllowedImages, ";"))
			if detail {
				// max_disconnect_effective: what applies, the smaller of
				// max_disconnect and the answering manager's grace.
				maxDisconnect, effective := fmtIntPtr(p.MaxDisconnect), fmtIntPtr(p.MaxDisconnectEffective)
				if human {
					maxDisconnect = "the managers' grace"
					if p.MaxDisconnect != nil {
						maxDisconnect = fmtSeconds(*p.MaxDisconnect)
					}
					if p.MaxDisconnectEffective != nil {
						effective = fmtSeconds(*p.MaxDisconnectEffective)
					}
				}
				row = append(row, maxDisconnect, effective, fmtTime(p.CreatedAt), fmtTime(p.ModifiedAt))
			}
			v.rows = append(v.rows, row)
		}
		return v
	}
}

func (c *cli) policyDetail(p *api.ResourcePolicy) view {
	return c.policyViewer(true)(p, []api.ResourcePolicy{*p})
}

func (c *cli) policyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Manage resource policies (admins read them; only superadmins change them)",
		Long: "Resource policies bound what the keypairs on them may use. Limits are checked by the\n" +
			"manager (cpu ≤ 512, mem ≤ 1024 GiB, cuda.device ≤ 64, cuda.shares ≤ 256, ...); a change\n" +
			"applies to new sessions at once, running ones keep what they hold.",
	}
	cmd.AddCommand(c.policyListCmd(), c.policyGetCmd(), c.policyCreateCmd(), c.policyUpdateCmd(), c.policyDeleteCmd())
	return cmd
}

func (c *cli) policyListCmd() *cobra.Command {
	var pg page
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List resource policies (an empty limit is unlimited)",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return showList(c, c.policyViewer(false))(cl.ListResourcePolicies(ctx, pg.query()))
		}),
	}
	pg.flags(cmd)
	return cmd
}

func (c *cli) policyGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one resource policy",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, c.policyDetail)(cl.GetResourcePolicy(ctx, args[0]))
		}),
	}
}

func (c *cli) policyCreateCmd() *cobra.Command {
	var (
		f    policyFlags
		body map[string]any
	)
	cmd := &cobra.Command{
		Use:   "create NAME [flags]",
		Short: "Create a resource policy; a limit not given is unlimited (superadmin)",
		Long: "Create a resource policy. Flags not given take the manager's defaults: every slot\n" +
			"unlimited, 1 container per session, no idle timeout, unlimited concurrent sessions,\n" +
			"session lifetime and folder size, no folder hosts, 10 folders, no root in containers.",
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) (err error) {
			if body, err = f.body(cmd); err != nil {
				return err
			}
			body["name"] = args[0]
			return nil
		},
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return show(c, c.policyDetail)(cl.CreateResourcePolicy(ctx, body))
		}),
	}
	f.register(cmd)
	return cmd
}

func (c *cli) policyUpdateCmd() *cobra.Command {
	var (
		f    policyFlags
		body map[string]any
	)
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change a resource policy; only the flags given are changed (the name cannot be) (superadmin)",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, _ []string) (err error) {
			if body, err = f.body(cmd); err != nil {
				return err
			}
			if len(body) == 0 {
				return errors.New("nothing to change: give at least one flag, for example --cpu 2 (see --help)")
			}
			return nil
		},
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, c.policyDetail)(cl.UpdateResourcePolicy(ctx, args[0], body))
		}),
	}
	f.register(cmd)
	return cmd
}

func (c *cli) policyDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a resource policy (superadmin; refused while any keypair, active or not, holds it; never default)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			if err := cl.DeleteResourcePolicy(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Deleted resource policy %s\n", args[0])
			return nil
		}),
	}
}

// withPolicyExport adds "export resource-policies" to the export command.
func (c *cli) withPolicyExport(export *cobra.Command) *cobra.Command {
	export.AddCommand(c.exportKindCmd(exportKind{
		kind:    "resource-policies",
		short:   "Export resource policies as CSV (admin; an empty cell is unlimited, folder hosts joined with ';')",
		filters: func(*cobra.Command) func(url.Values) { return func(url.Values) {} },
	}))
	return export
}
