package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// defaultDomain is the domain the manager creates on first start, which a
// one-domain cluster uses for everything.
const defaultDomain = "default"

func groupView(data any, gs []api.Group) view {
	v := view{data: data, columns: []string{"name", "domain", "description", "is_active", "created_at"}}
	for _, g := range gs {
		v.rows = append(v.rows, []string{g.Name, g.Domain, g.Description, fmtBool(g.IsActive), fmtTime(g.CreatedAt)})
	}
	return v
}

func groupDetail(g *api.Group) view {
	v := groupView(g, []api.Group{*g})
	v.single = true
	return v
}

// groupWithMembersView shows one group with its members, as "group get" and
// the member changes answer it.
func groupWithMembersView(g *api.GroupDetail) view {
	v := groupView(g, []api.Group{g.Group})
	v.single = true
	v.columns = append(v.columns, "members")
	v.rows[0] = append(v.rows[0], fmtList(g.Members))
	return v
}

func (c *cli) groupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Manage the groups of a domain and their members (admin)",
	}
	cmd.AddCommand(
		c.groupListCmd(),
		c.groupCreateCmd(),
		c.groupGetCmd(),
		c.groupUpdateCmd(),
		c.groupMembersCmd("add-member", true, "Add users of the group's domain to a group"),
		c.groupMembersCmd("remove-member", false, "Remove users from a group"),
	)
	return cmd
}

// domainFlag adds --domain to a group command.
func domainFlag(cmd *cobra.Command, domain *string) {
	cmd.Flags().StringVar(domain, "domain", defaultDomain, "the domain of the group")
}

func (c *cli) groupListCmd() *cobra.Command {
	var domain string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the groups of a domain",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return showList(c, groupView)(cl.ListGroups(ctx, domain))
		}),
	}
	domainFlag(cmd, &domain)
	return cmd
}

func (c *cli) groupCreateCmd() *cobra.Command {
	var (
		domain string
		in     api.GroupCreate
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a group",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			in.Name = args[0]
			return show(c, groupDetail)(cl.CreateGroup(ctx, domain, in))
		}),
	}
	domainFlag(cmd, &domain)
	cmd.Flags().StringVar(&in.Description, "description", "", "free text about the group")
	return cmd
}

func (c *cli) groupGetCmd() *cobra.Command {
	var domain string
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a group with its members",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, groupWithMembersView)(cl.GetGroup(ctx, domain, args[0]))
		}),
	}
	domainFlag(cmd, &domain)
	return cmd
}

func (c *cli) groupUpdateCmd() *cobra.Command {
	var (
		domain, description string
		active              bool
		p                   api.GroupPatch
	)
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a group's description or activity; only the flags given are changed",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("description") {
				p.Description = &description
			}
			if cmd.Flags().Changed("active") {
				p.IsActive = &active
			}
			if p == (api.GroupPatch{}) {
				return errors.New("nothing to change: give --description or --active=true|false")
			}
			return nil
		},
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, groupDetail)(cl.UpdateGroup(ctx, domain, args[0], p))
		}),
	}
	domainFlag(cmd, &domain)
	cmd.Flags().StringVar(&description, "description", "", "new description")
	cmd.Flags().BoolVar(&active, "active", false, "--active=true activates the group, --active=false deactivates it")
	return cmd
}

// groupMembersCmd builds "group add-member" and "group remove-member"; both
// print the group with its members as they are afterwards.
func (c *cli) groupMembersCmd(use string, add bool, short string) *cobra.Command {
	var domain string
	cmd := &cobra.Command{
		Use:   use + " NAME EMAIL...",
		Short: short,
		Args:  cobra.MinimumNArgs(2),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			var toAdd, toRemove []string
			if add {
				toAdd = args[1:]
			} else {
				toRemove = args[1:]
			}
			return show(c, groupWithMembersView)(cl.ChangeGroupMembers(ctx, domain, args[0], toAdd, toRemove))
		}),
	}
	domainFlag(cmd, &domain)
	return cmd
}
