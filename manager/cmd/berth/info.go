package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func (c *cli) infoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the cluster's version, Raft members, agents and sessions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			info, err := cl.Info(cmd.Context())
			if err != nil {
				return err
			}
			members := make([]string, len(info.Cluster.Members))
			for i, m := range info.Cluster.Members {
				members[i] = m.ID + "=" + m.State
			}
			return render(c.stdout, c.output, view{
				data:   info,
				single: true,
				columns: []string{
					"version", "commit", "api_version", "license", "leader", "members", "raft_index",
					"agents_alive", "agents_lost", "sessions_pending", "sessions_running",
				},
				rows: [][]string{{
					info.Version, info.Commit, info.APIVersion, info.License, info.Cluster.Leader,
					strings.Join(members, ","), strconv.FormatUint(info.Cluster.RaftIndex, 10),
					fmtInt(info.Agents.Alive), fmtInt(info.Agents.Lost),
					fmtInt(info.Sessions.Pending), fmtInt(info.Sessions.Running),
				}},
			})
		},
	}
}
