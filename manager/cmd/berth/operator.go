package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

func (c *cli) operatorCmd() *cobra.Command {
	op := &cobra.Command{
		Use:   "operator",
		Short: "Cluster operations (superadmin)",
	}
	raft := &cobra.Command{
		Use:   "raft",
		Short: "Inspect and change the managers' Raft configuration",
	}
	raft.AddCommand(c.raftListPeersCmd(), c.raftRemovePeerCmd())
	op.AddCommand(raft)
	return op
}

func (c *cli) raftListPeersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list-peers",
		Short: "List the managers in the Raft configuration",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return show(c, raftPeersView)(cl.RaftConfiguration(ctx))
		}),
	}
}

func raftPeersView(rc *api.RaftConfiguration) view {
	v := view{data: rc, columns: []string{"id", "address", "raft_address", "state", "voter", "leader"}}
	for _, s := range rc.Servers {
		v.rows = append(v.rows, []string{
			s.ID, s.Address, s.RaftAddr, s.State, fmtBool(s.Voter), fmtBool(s.ID == rc.Leader),
		})
	}
	return v
}

func (c *cli) raftRemovePeerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove-peer ID",
		Short: "Remove a manager from the Raft configuration",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			if err := cl.RemoveRaftPeer(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Removed peer %s\n", args[0])
			return nil
		}),
	}
}
