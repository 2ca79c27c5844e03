package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// keypairView shows keypairs with the columns of GET /v1/export/keypairs.csv.
func keypairView(data any, kps []api.Keypair) view {
	v := view{data: data, columns: []string{
		"access_key", "user", "is_active", "is_admin", "resource_policy", "rate_limit",
		"concurrency_used", "created_at", "last_used",
	}}
	for _, k := range kps {
		v.rows = append(v.rows, []string{
			k.AccessKey, k.User, fmtBool(k.IsActive), fmtBool(k.IsAdmin), k.ResourcePolicy,
			fmtInt(k.RateLimit), fmtInt(k.ConcurrencyUsed), fmtTime(k.CreatedAt), fmtTimePtr(k.LastUsed),
		})
	}
	return v
}

func keypairDetail(k *api.Keypair) view {
	v := keypairView(k, []api.Keypair{*k})
	v.single = true
	return v
}

// keypairCreatedView is keypairDetail with the secret key, which only the
// answer to a create holds.
func keypairCreatedView(k *api.Keypair) view {
	v := keypairDetail(k)
	v.columns = append(v.columns, "secret_key")
	v.rows[0] = append(v.rows[0], k.SecretKey)
	return v
}

func (c *cli) keypairCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keypair",
		Short: "Manage keypairs (admins: all; users: their own)",
	}
	cmd.AddCommand(
		c.keypairListCmd(),
		c.keypairCreateCmd(),
		c.keypairGetCmd(),
		c.keypairUpdateCmd(),
		c.keypairActiveCmd("activate", true, "Enable a keypair (its user must be active for it to authenticate)"),
		c.keypairActiveCmd("deactivate", false, "Disable a keypair; it stops authenticating at once"),
		c.keypairDeleteCmd(),
	)
	return cmd
}

// keypairFilters adds the filter flags of "keypair list" and "export
// keypairs" to cmd and returns what copies the ones given into the query.
func keypairFilters(cmd *cobra.Command) func(q url.Values) {
	var (
		user   string
		active bool
	)
	cmd.Flags().StringVar(&user, "user", "", "only keypairs of the user with this email")
	cmd.Flags().BoolVar(&active, "active", false, "only active keypairs (--active=false: only inactive ones); all when absent")
	return func(q url.Values) {
		setIf(q, "user", user)
		if cmd.Flags().Changed("active") {
			q.Set("is_active", strconv.FormatBool(active))
		}
	}
}

func (c *cli) keypairListCmd() *cobra.Command {
	var (
		pg         page
		setFilters func(url.Values)
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List keypairs",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			q := pg.query()
			setFilters(q)
			return showList(c, keypairView)(cl.ListKeypairs(ctx, q))
		}),
	}
	setFilters = keypairFilters(cmd)
	pg.flags(cmd)
	return cmd
}

func (c *cli) keypairCreateCmd() *cobra.Command {
	var (
		in    api.KeypairCreate
		admin bool
	)
	cmd := &cobra.Command{
		Use:   "create --user EMAIL",
		Short: "Create a keypair for a user and print its secret key (shown only once)",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, cmd *cobra.Command, _ []string) error {
			// Absent, the manager decides from the user's role; only an
			// explicit --admin or --admin=false overrides it.
			if cmd.Flags().Changed("admin") {
				in.IsAdmin = &admin
			}
			if err := show(c, keypairCreatedView)(cl.CreateKeypair(ctx, in)); err != nil {
				return err
			}
			fmt.Fprintln(c.stderr, secretOnce)
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&in.User, "user", "", "email of the keypair's owner (required)")
	fl.StringVar(&in.ResourcePolicy, "resource-policy", "", "resource policy of the keypair (default: default)")
	fl.BoolVar(&admin, "admin", false, "an admin keypair (needs an admin or superadmin user; default: as the user's role)")
	fl.IntVar(&in.RateLimit, "rate-limit", 0, "requests per 15 minutes (0: no limit)")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}

func (c *cli) keypairGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get ACCESS_KEY",
		Short: "Show one keypair",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, keypairDetail)(cl.GetKeypair(ctx, args[0]))
		}),
	}
}

func (c *cli) keypairUpdateCmd() *cobra.Command {
	var (
		policy    string
		rateLimit int
		p         api.KeypairPatch
	)
	cmd := &cobra.Command{
		Use:   "update ACCESS_KEY",
		Short: "Change a keypair's resource policy or rate limit; only the flags given are changed",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("resource-policy") {
				p.ResourcePolicy = &policy
			}
			if cmd.Flags().Changed("rate-limit") {
				p.RateLimit = &rateLimit
			}
			if p == (api.KeypairPatch{}) {
				return errors.New("nothing to change: give --resource-policy or --rate-limit")
			}
			return nil
		},
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, keypairDetail)(cl.UpdateKeypair(ctx, args[0], p))
		}),
	}
	cmd.Flags().StringVar(&policy, "resource-policy", "", "new resource policy")
	cmd.Flags().IntVar(&rateLimit, "rate-limit", 0, "new rate limit in requests per 15 minutes (0: no limit)")
	return cmd
}

// keypairActiveCmd builds "keypair activate" and "keypair deactivate".
func (c *cli) keypairActiveCmd(use string, active bool, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " ACCESS_KEY",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, keypairDetail)(cl.UpdateKeypair(ctx, args[0], api.KeypairPatch{IsActive: &active}))
		}),
	}
}

func (c *cli) keypairDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ACCESS_KEY",
		Short: "Delete a keypair (refused while it owns unfinished sessions)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			if err := cl.DeleteKeypair(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Deleted keypair %s\n", args[0])
			return nil
		}),
	}
}
