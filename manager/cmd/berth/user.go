package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// secretOnce is printed after every command that shows a new secret key:
// the manager keeps no way to show it again.
const secretOnce = "The secret key is shown only this once: store it now. It cannot be retrieved later."

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

// userDetail shows one user with every field the API returns. Only GET
// /v1/users/{email} lists the keypairs; withKeypairs leaves the column out
// of other answers rather than show an empty list that is not true.
func userDetail(u *api.User, withKeypairs bool) view {
	v := userView(u, []api.User{*u})
	v.single = true
	v.columns = append(v.columns, "description")
	v.rows[0] = append(v.rows[0], u.Description)
	if withKeypairs {
		v.columns = append(v.columns, "keypairs")
		v.rows[0] = append(v.rows[0], fmtList(u.Keypairs))
	}
	v.columns = append(v.columns, "modified_at")
	v.rows[0] = append(v.rows[0], fmtTime(u.ModifiedAt))
	return v
}

// userCreatedView shows the new user with their first keypair's keys.
func userCreatedView(out *api.UserCreated) view {
	v := userView(out, []api.User{out.User})
	v.single = true
	v.columns = append(v.columns, "description", "access_key", "secret_key")
	v.rows[0] = append(v.rows[0], out.User.Description, out.Keypair.AccessKey, out.Keypair.SecretKey)
	return v
}

// userFilters adds the filter flags of "user list" and "export users" to
// cmd and returns what copies the ones given into the query.
func userFilters(cmd *cobra.Command) func(q url.Values) {
	var status, email, username, group string
	cmd.Flags().StringVar(&status, "status", "", "only users with this status: active or inactive")
	cmd.Flags().StringVar(&email, "email", "", "only users whose email contains this")
	cmd.Flags().StringVar(&username, "username", "", "only users whose username contains this")
	cmd.Flags().StringVar(&group, "group", "", "only members of this group")
	return func(q url.Values) {
		setIf(q, "status", status)
		setIf(q, "email", email)
		setIf(q, "username", username)
		setIf(q, "group", group)
	}
}

func (c *cli) userCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage users (admin)",
		Long: "Manage users (admin). Users are never deleted: deactivate them instead, which ends\n" +
			"their logins and deactivates every keypair they have.",
	}
	cmd.AddCommand(
		c.userListCmd(),
		c.userGetCmd(),
		c.userCreateCmd(),
		c.userUpdateCmd(),
		c.userStatusCmd("deactivate", api.StatusInactive,
			"Deactivate a user: their logins end and every keypair of theirs becomes inactive"),
		c.userStatusCmd("activate", api.StatusActive,
			"Reactivate a user; their keypairs stay inactive until re-enabled one by one"),
	)
	return cmd
}

func (c *cli) userListCmd() *cobra.Command {
	var (
		pg         page
		setFilters func(url.Values)
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			q := pg.query()
			setFilters(q)
			return showList(c, userView)(cl.ListUsers(ctx, q))
		}),
	}
	setFilters = userFilters(cmd)
	pg.flags(cmd)
	return cmd
}

func (c *cli) userGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get EMAIL",
		Short: "Show one user with their domain, groups and keypairs",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			u, err := cl.GetUser(ctx, args[0])
			if err != nil {
				return err
			}
			return render(c.stdout, c.output, userDetail(u, true))
		}),
	}
}

// passwordFromInput is the value of --password that asks for the password
// the way a missing one does, so that it need not appear on the command line.
const passwordFromInput = "-"

const newPasswordSources = "BERTH_NEW_PASSWORD, else asked twice without echo on a terminal, else one line of standard input"

// newPassword reads a new user's password from BERTH_NEW_PASSWORD, else
// from the terminal (twice, to catch typos nobody can see), else as one
// line of standard input (for scripts).
func (c *cli) newPassword() (string, error) {
	if p := c.getenv("BERTH_NEW_PASSWORD"); p != "" {
		return p, nil
	}
	if !isTerminal(c.stdinF) {
		return c.prompt("")
	}
	first, err := c.promptSecret("New password: ")
	if err != nil {
		return "", err
	}
	again, err := c.promptSecret("Repeat the new password: ")
	if err != nil {
		return "", err
	}
	if first != again {
		return "", errors.New("the two passwords differ")
	}
	return first, nil
}

func (c *cli) userCreateCmd() *cobra.Command {
	var (
		in       api.UserCreate
		inactive bool
	)
	cmd := &cobra.Command{
		Use:   "create EMAIL --username NAME",
		Short: "Create a user and their first keypair",
		Long: "Create a user and their first keypair, and print the keypair's access key and\n" +
			"secret key. The secret key is shown only this once.\n\n" +
			"The password comes from --password, else BERTH_NEW_PASSWORD, else it is asked for twice\n" +
			"without echo on a terminal, else it is one line of standard input.\n" +
			"It needs at least 8 characters with a letter, a digit and a special character.",
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			// cobra checks required flags only after PreRunE: check them
			// first so that a missing --username is told before the
			// password is asked for.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return err
			}
			in.Email = args[0]
			if inactive {
				in.Status = api.StatusInactive
			}
			if in.Password == "" || in.Password == passwordFromInput {
				p, err := c.newPassword()
				if err != nil {
					return fmt.Errorf("reading the password of %s: %w", in.Email, err)
				}
				in.Password = p
			}
			return nil
		},
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			if err := show(c, userCreatedView)(cl.CreateUser(ctx, in)); err != nil {
				return err
			}
			fmt.Fprintln(c.stderr, secretOnce)
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&in.Username, "username", "", "unique user name, at most 64 characters (required)")
	fl.StringVar(&in.FullName, "full-name", "", "the person's full name, at most 64 characters")
	fl.StringVar(&in.Password, "password", "", "password (\"-\" or absent: read from "+newPasswordSources+")")
	fl.StringVar(&in.Role, "role", "", "superadmin, admin, user or monitor (default user)")
	fl.StringVar(&in.Domain, "domain", "", "domain of the user (default: default)")
	fl.StringSliceVar(&in.Groups, "group", nil, "a group of the domain to join (repeatable)")
	fl.BoolVar(&inactive, "inactive", false, "create the user inactive (and their keypair inactive)")
	fl.BoolVar(&in.NeedPasswordChange, "need-password-change", false, "mark that the user should change the password")
	fl.StringVar(&in.ResourcePolicy, "resource-policy", "", "resource policy of the first keypair (default: default)")
	fl.StringVar(&in.Description, "description", "", "free text about the user")
	_ = cmd.MarkFlagRequired("username")
	return cmd
}

func (c *cli) userUpdateCmd() *cobra.Command {
	var (
		f struct {
			username, fullName, password, role, description string
			groups                                          []string
			needPasswordChange                              bool
		}
		p api.UserPatch
	)
	cmd := &cobra.Command{
		Use:   "update EMAIL",
		Short: "Change a user; only the flags given are changed",
		Long: "Change a user; only the flags given are sent, everything else stays as it is.\n" +
			"The email cannot change: it is the user id. Setting a password ends every login of the user.",
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if fl.Changed("username") {
				p.Username = &f.username
			}
			if fl.Changed("full-name") {
				p.FullName = &f.fullName
			}
			if fl.Changed("role") {
				p.Role = &f.role
			}
			if fl.Changed("description") {
				p.Description = &f.description
			}
			if fl.Changed("need-password-change") {
				p.NeedPasswordChange = &f.needPasswordChange
			}
			if fl.Changed("group") {
				// Never nil, so that --group "" sends [] and clears the list.
				groups := append([]string{}, f.groups...)
				p.Groups = &groups
			}
			if fl.Changed("password") {
				if f.password == passwordFromInput {
					pw, err := c.newPassword()
					if err != nil {
						return fmt.Errorf("reading the new password of %s: %w", args[0], err)
					}
					f.password = pw
				}
				p.Password = &f.password
			}
			if p == (api.UserPatch{}) {
				return errors.New("nothing to change: give at least one of --username, --full-name, --password, " +
					"--role, --group, --need-password-change, --description")
			}
			return nil
		},
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return c.patchUser(ctx, cl, args[0], p)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.username, "username", "", "new user name")
	fl.StringVar(&f.fullName, "full-name", "", "new full name")
	fl.StringVar(&f.password, "password", "", "new password (\"-\": read from "+newPasswordSources+")")
	fl.StringVar(&f.role, "role", "", "new role: superadmin, admin, user or monitor")
	fl.StringSliceVar(&f.groups, "group", nil, "the user's groups (repeatable; replaces the whole list; --group \"\" removes every group)")
	fl.BoolVar(&f.needPasswordChange, "need-password-change", false, "mark (true) or unmark (false) that the user should change the password")
	fl.StringVar(&f.description, "description", "", "new description")
	return cmd
}

// userStatusCmd builds "user activate" and "user deactivate", which differ
// only in the status sent and what they tell the administrator afterwards.
func (c *cli) userStatusCmd(use, status, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " EMAIL",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			if err := c.patchUser(ctx, cl, args[0], api.UserPatch{Status: &status}); err != nil {
				return err
			}
			email := args[0]
			if status == api.StatusActive {
				// Reactivation deliberately leaves credentials off; say how
				// to turn them back on so it does not look like a failure.
				fmt.Fprintf(c.stderr, "%s is active again. Their keypairs stay inactive: re-enable each one with\n"+
					"\"berth keypair activate ACCESS_KEY\" (list them with \"berth keypair list --user %s --active=false\").\n",
					email, email)
				return nil
			}
			fmt.Fprintf(c.stderr, "%s is inactive: their logins have ended and every keypair of theirs is inactive.\n", email)
			return nil
		}),
	}
}

// patchUser sends p and prints the user as the manager answers it.
func (c *cli) patchUser(ctx context.Context, cl *client.Client, email string, p api.UserPatch) error {
	u, err := cl.UpdateUser(ctx, email, p)
	if err != nil {
		return err
	}
	return render(c.stdout, c.output, userDetail(u, false))
}
