package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

func (c *cli) infoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the cluster's version, Raft members, agents and sessions",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return show(c, infoView)(cl.Info(ctx))
		}),
	}
}

func infoView(info *api.Info) view {
	members := make([]string, len(info.Cluster.Members))
	for i, m := range info.Cluster.Members {
		members[i] = m.ID + "=" + m.State
	}
	return view{
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
	}
}
