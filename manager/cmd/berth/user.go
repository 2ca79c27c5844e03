package main

import (
	"net/url"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
)

// userView shows users with the columns of GET /v1/export/users.csv.
func userView(data any, users []api.User) view {
	v := view{data: data, columns: []string{
		"email", "username", "full_name", "role", "status", "domain", "groups", "need_password_change", "created_at",
	}}
	for _, u := range users {
		v.rows = append(v.rows, []string{
			u.Email, u.Username, u.FullName, u.Role, u.Status, u.Domain, fmtList(u.Groups),
			fmtBool(u.NeedPasswordChange), fmtTime(u.CreatedAt),
		})
	}
	return v
}

func (c *cli) userCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage users (admin)",
	}
	cmd.AddCommand(c.userListCmd(), c.userGetCmd())
	return cmd
}

func (c *cli) userListCmd() *cobra.Command {
	var f struct {
		status, email, username, group string
		page                           page
	}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			setIf(q, "status", f.status)
			setIf(q, "email", f.email)
			setIf(q, "username", f.username)
			setIf(q, "group", f.group)
			f.page.apply(q)
			list, err := cl.ListUsers(cmd.Context(), q)
			if err != nil {
				return err
			}
			if err := render(c.stdout, c.output, userView(list, list.Items)); err != nil {
				return err
			}
			c.printNextCursor(list.NextCursor)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.status, "status", "", "only users with this status: active or inactive")
	cmd.Flags().StringVar(&f.email, "email", "", "only users whose email contains this")
	cmd.Flags().StringVar(&f.username, "username", "", "only users whose username contains this")
	cmd.Flags().StringVar(&f.group, "group", "", "only members of this group")
	f.page.flags(cmd)
	return cmd
}

func (c *cli) userGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get EMAIL",
		Short: "Show one user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			u, err := cl.GetUser(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			v := userView(u, []api.User{*u})
			v.single = true
			v.columns = append(v.columns, "description", "keypairs", "modified_at")
			v.rows[0] = append(v.rows[0], u.Description, fmtList(u.Keypairs), fmtTime(u.ModifiedAt))
			return render(c.stdout, c.output, v)
		},
	}
}
