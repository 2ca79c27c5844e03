package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// tokenOnce is printed after berth agent token create: the managers keep
// only the token's hash.
const tokenOnce = "The token is shown only this once: give it to the new node in a file (berth-agent -token-file FILE, mode 0600) " +
	"or in BERTH_AGENT_TOKEN, never on a command line. It cannot be retrieved later."

func agentTokenView(data any, toks []api.AgentToken) view {
	v := view{data: data, columns: []string{"id", "status", "uses", "used", "expires_at", "auto_approve", "created_by", "created_at", "revoked_at"}}
	for _, k := range toks {
		uses := "unlimited"
		if k.Uses > 0 {
			uses = fmtInt(k.Uses)
		}
		expires := fmtTimePtr(k.ExpiresAt)
		if k.ExpiresAt == nil {
			expires = "never"
		}
		v.rows = append(v.rows, []string{k.ID, k.Status, uses, fmtInt(k.Used), expires, fmtBool(k.AutoApprove), k.CreatedBy,
			fmtTime(k.CreatedAt), fmtTimePtr(k.RevokedAt)})
	}
	return v
}

// agentTokenCreatedView is one token with the token itself, which only
// the answer to a create holds.
func agentTokenCreatedView(k *api.AgentToken) view {
	v := agentTokenView(k, []api.AgentToken{*k})
	v.single = true
	v.columns = append(v.columns, "token")
	v.rows[0] = append(v.rows[0], k.Token)
	return v
}

func (c *cli) agentTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue, list and revoke the join tokens new agents register with (superadmin; admins may list)",
	}
	cmd.AddCommand(c.agentTokenCreateCmd(), c.agentTokenListCmd(), c.agentTokenRevokeCmd())
	return cmd
}

func (c *cli) agentTokenCreateCmd() *cobra.Command {
	var (
		in  api.AgentTokenCreate
		ttl string
	)
	cmd := &cobra.Command{
		Use:   "create [--uses N] [--ttl D] [--auto-approve]",
		Short: "Issue an agent join token and print it (shown only once)",
		Args:  cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if ttl == "" {
				return nil
			}
			v, err := parseSeconds(ttl)
			if err != nil {
				return fmt.Errorf("--ttl: %w", err)
			}
			in.TTL = v
			return nil
		},
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			if err := show(c, agentTokenCreatedView)(cl.CreateAgentToken(ctx, in)); err != nil {
				return err
			}
			fmt.Fprintln(c.stderr, tokenOnce)
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.IntVar(&in.Uses, "uses", 0, "how many agents may register with it (0: any number)")
	fl.StringVar(&ttl, "ttl", "", "how long it admits agents: seconds or a duration such as 24h (default: until revoked)")
	fl.BoolVar(&in.AutoApprove, "auto-approve", false, "its agents take sessions at once (default: each waits for berth agent approve ID)")
	return cmd
}

func (c *cli) agentTokenListCmd() *cobra.Command {
	var pg page
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List agent tokens with status and uses (never the tokens)",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return showList(c, agentTokenView)(cl.ListAgentTokens(ctx, pg.query()))
		}),
	}
	pg.flags(cmd)
	return cmd
}

func (c *cli) agentTokenRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an agent token: no agent registers with it afterwards (agents that joined stay)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			if err := cl.RevokeAgentToken(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Revoked agent token %s\n", args[0])
			return nil
		}),
	}
}

func (c *cli) agentApproveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "approve ID",
		Short: "Approve an agent that joined with a token without --auto-approve: sessions may be placed on it from now on",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, c.agentDetail)(cl.ApproveAgent(ctx, args[0]))
		}),
	}
}
