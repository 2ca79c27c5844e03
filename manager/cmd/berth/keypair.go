package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
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

func (c *cli) keypairListCmd() *cobra.Command {
	var (
		user   string
		active bool
		pg     page
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List keypairs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			setIf(q, "user", user)
			if cmd.Flags().Changed("active") {
				q.Set("is_active", strconv.FormatBool(active))
			}
			pg.apply(q)
			list, err := cl.ListKeypairs(cmd.Context(), q)
			if err != nil {
				return err
			}
			if err := render(c.stdout, c.output, keypairView(list, list.Items)); err != nil {
				return err
			}
			c.printNextCursor(list.NextCursor)
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "only keypairs of the user with this email")
	cmd.Flags().BoolVar(&active, "active", false, "only active keypairs (--active=false: only inactive ones); all when absent")
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Absent, the manager decides from the user's role; only an
			// explicit --admin or --admin=false overrides it.
			if cmd.Flags().Changed("admin") {
				in.IsAdmin = &admin
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			k, err := cl.CreateKeypair(cmd.Context(), in)
			if err != nil {
				return err
			}
			v := keypairDetail(k)
			v.columns = append(v.columns, "secret_key")
			v.rows[0] = append(v.rows[0], k.SecretKey)
			if err := render(c.stdout, c.output, v); err != nil {
				return err
			}
			fmt.Fprintln(c.stderr, secretOnce)
			return nil
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			k, err := cl.GetKeypair(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(c.stdout, c.output, keypairDetail(k))
		},
	}
}

func (c *cli) keypairUpdateCmd() *cobra.Command {
	var (
		policy    string
		rateLimit int
	)
	cmd := &cobra.Command{
		Use:   "update ACCESS_KEY",
		Short: "Change a keypair's resource policy or rate limit; only the flags given are changed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p api.KeypairPatch
			if cmd.Flags().Changed("resource-policy") {
				p.ResourcePolicy = &policy
			}
			if cmd.Flags().Changed("rate-limit") {
				p.RateLimit = &rateLimit
			}
			if p == (api.KeypairPatch{}) {
				return errors.New("nothing to change: give --resource-policy or --rate-limit")
			}
			return c.patchKeypair(cmd, args[0], p)
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.patchKeypair(cmd, args[0], api.KeypairPatch{IsActive: &active})
		},
	}
}

// patchKeypair sends p and prints the keypair as the manager answers it.
func (c *cli) patchKeypair(cmd *cobra.Command, accessKey string, p api.KeypairPatch) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	k, err := cl.UpdateKeypair(cmd.Context(), accessKey, p)
	if err != nil {
		return err
	}
	return render(c.stdout, c.output, keypairDetail(k))
}

func (c *cli) keypairDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ACCESS_KEY",
		Short: "Delete a keypair (refused while it owns unfinished sessions)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			if err := cl.DeleteKeypair(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Deleted keypair %s\n", args[0])
			return nil
		},
	}
}
