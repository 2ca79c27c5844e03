package main

import (
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

func (c *cli) keypairCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keypair",
		Short: "Manage keypairs (admins: all; users: their own)",
	}
	cmd.AddCommand(c.keypairListCmd())
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
			// The columns of GET /v1/export/keypairs.csv.
			v := view{data: list, columns: []string{
				"access_key", "user", "is_active", "is_admin", "resource_policy", "rate_limit",
				"concurrency_used", "created_at", "last_used",
			}}
			for _, k := range list.Items {
				v.rows = append(v.rows, []string{
					k.AccessKey, k.User, fmtBool(k.IsActive), fmtBool(k.IsAdmin), k.ResourcePolicy,
					fmtInt(k.RateLimit), fmtInt(k.ConcurrencyUsed), fmtTime(k.CreatedAt), fmtTimePtr(k.LastUsed),
				})
			}
			if err := render(c.stdout, c.output, v); err != nil {
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
