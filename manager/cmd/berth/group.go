package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
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

func groupDetailView(g *api.GroupDetail) view {
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			list, err := cl.ListGroups(cmd.Context(), domain)
			if err != nil {
				return err
			}
			if err := render(c.stdout, c.output, groupView(list, list.Items)); err != nil {
				return err
			}
			c.printNextCursor(list.NextCursor)
			return nil
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Name = args[0]
			cl, err := c.client()
			if err != nil {
				return err
			}
			g, err := cl.CreateGroup(cmd.Context(), domain, in)
			if err != nil {
				return err
			}
			v := groupView(g, []api.Group{*g})
			v.single = true
			return render(c.stdout, c.output, v)
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			g, err := cl.GetGroup(cmd.Context(), domain, args[0])
			if err != nil {
				return err
			}
			return render(c.stdout, c.output, groupDetailView(g))
		},
	}
	domainFlag(cmd, &domain)
	return cmd
}

func (c *cli) groupUpdateCmd() *cobra.Command {
	var (
		domain, description string
		active              bool
	)
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a group's description or activity; only the flags given are changed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p api.GroupPatch
			if cmd.Flags().Changed("description") {
				p.Description = &description
			}
			if cmd.Flags().Changed("active") {
				p.IsActive = &active
			}
			if p == (api.GroupPatch{}) {
				return errors.New("nothing to change: give --description or --active=true|false")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			g, err := cl.UpdateGroup(cmd.Context(), domain, args[0], p)
			if err != nil {
				return err
			}
			v := groupView(g, []api.Group{*g})
			v.single = true
			return render(c.stdout, c.output, v)
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			var toAdd, toRemove []string
			if add {
				toAdd = args[1:]
			} else {
				toRemove = args[1:]
			}
			g, err := cl.ChangeGroupMembers(cmd.Context(), domain, args[0], toAdd, toRemove)
			if err != nil {
				return err
			}
			return render(c.stdout, c.output, groupDetailView(g))
		},
	}
	domainFlag(cmd, &domain)
	return cmd
}
