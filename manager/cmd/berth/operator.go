package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
	snap := &cobra.Command{
		Use:   "snapshot",
		Short: "Back up and restore the cluster state (Raft snapshots)",
	}
	snap.AddCommand(c.snapshotSaveCmd(), c.snapshotRestoreCmd())
	op.AddCommand(raft, snap)
	return op
}

func (c *cli) snapshotSaveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "save FILE",
		Short: "Have the leader take a snapshot and save it to FILE (the backup)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			// Written beside FILE and renamed, so FILE is never half a snapshot.
			tmp, err := os.CreateTemp(filepath.Dir(args[0]), "."+filepath.Base(args[0])+".*")
			if err != nil {
				return fmt.Errorf("create snapshot file: %w", err)
			}
			defer os.Remove(tmp.Name())
			info, err := cl.SaveSnapshot(ctx, tmp)
			if cerr := tmp.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("write snapshot file: %w", cerr)
			}
			if err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), args[0]); err != nil {
				return fmt.Errorf("save snapshot as %s: %w", args[0], err)
			}
			if c.output == formatJSON {
				return render(c.stdout, c.output, view{data: map[string]any{"file": args[0], "index": info.Index, "term": info.Term, "bytes": info.Bytes}})
			}
			fmt.Fprintf(c.stdout, "Saved snapshot at index %d (term %d, %d bytes) to %s\n", info.Index, info.Term, info.Bytes, args[0])
			return nil
		}),
	}
}

func (c *cli) snapshotRestoreCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the WHOLE cluster state with a saved snapshot (every change since it is lost)",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			if !yes {
				return fmt.Errorf("restore replaces every user, keypair, policy and session record with the snapshot's; add --yes to do it")
			}
			return nil
		},
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("open snapshot: %w", err)
			}
			defer f.Close()
			if err := cl.RestoreSnapshot(ctx, f); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Restored the cluster state from %s\n", args[0])
			return nil
		}),
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm that the current state is to be replaced")
	return cmd
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
