package main

import (
	"fmt"

	"github.com/spf13/cobra"
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			rc, err := cl.RaftConfiguration(cmd.Context())
			if err != nil {
				return err
			}
			v := view{data: rc, columns: []string{"id", "address", "raft_address", "state", "voter", "leader"}}
			for _, s := range rc.Servers {
				v.rows = append(v.rows, []string{
					s.ID, s.Address, s.RaftAddr, s.State, fmtBool(s.Voter), fmtBool(s.ID == rc.Leader),
				})
			}
			return render(c.stdout, c.output, v)
		},
	}
}

func (c *cli) raftRemovePeerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove-peer ID",
		Short: "Remove a manager from the Raft configuration",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			if err := cl.RemoveRaftPeer(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Removed peer %s\n", args[0])
			return nil
		},
	}
}
