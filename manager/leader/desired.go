package leader

import (
	"cmp"
	"maps"
	"slices"
	"strconv"

	"github.com/berth-cluster/berth/manager/apps"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// What an agent should run and stop: computed on each answer from the
// replicated state and, for the stop list, the leader's last report of the
// agent.

// keepAlive is what an interactive session without a command runs: it
// stays up for exec and ends at once on SIGTERM (a shell as PID 1 would
// ignore it and wait for the stop grace). The image needs a /bin/sh.
var keepAlive = []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"}

// Desired is the containers the agent should run (those placed on it of
// sessions that are SCHEDULED, PREPARING or RUNNING) and those it must stop
// and remove at once (stopContainers).
func (l *Leader) Desired(tx *state.Txn, agent string) (run []api.DesiredContainer, stop []string, err error) {
	if run, err = desiredContainers(tx, agent); err != nil {
		return nil, nil, err
	}
	var reported []api.ContainerReport
	if t := l.current(); t != nil {
		reported = t.agents.reported(agent)
	}
	if stop, err = stopContainers(tx, agent, reported); err != nil {
		return nil, nil, err
	}
	return run, stop, nil
}

// DesiredIndex is the index the agent's desired containers last changed
// at, which the heartbeat answer carries so the agent asks for them again
// only when it moved: the latest modify index of the agent's record and of
// the sessions occupying it. Only those are read (an agent's finished
// sessions grow without bound), so when the latest of them ends the value
// may go down: a different value, not only a higher one, means news.
func DesiredIndex(tx *state.Txn, rec *state.Agent) (uint64, error) {
	ss, err := tx.OccupyingOnAgent(rec.ID)
	if err != nil {
		return 0, err
	}
	index := rec.ModifyIndex
	for _, s := range ss {
		index = max(index, s.ModifyIndex)
	}
	return index, nil
}

// desiredContainers lists what an agent should run: the containers placed
// on it of sessions that are SCHEDULED, PREPARING or RUNNING.
func desiredContainers(tx *state.Txn, agent string) ([]api.DesiredContainer, error) {
	ss, err := tx.OccupyingOnAgent(agent)
	if err != nil {
		return nil, err
	}
	rec, err := tx.Agent(agent)
	if err != nil {
		return nil, err
	}
	out := []api.DesiredContainer{}
	for _, s := range ss {
		if !s.Status.Active() {
			continue
		}
		var mounts []api.Mount
		for _, ct := range s.Containers {
			if ct.Agent != agent {
				continue
			}
			if mounts == nil {
				if mounts, err = desiredMounts(tx, s); err != nil {
					return nil, err
				}
			}
			out = append(out, desiredContainer(s, ct, rec, mounts))
		}
	}
	slices.SortFunc(out, func(x, y api.DesiredContainer) int { return cmp.Compare(x.ID, y.ID) })
	return out, nil
}

// desiredGPUs resolves a container's slices against the agent's inventory
// (rec may be nil: the agent is gone, and so is every GPU): what the agent
// needs to set the device up, with the slice's part of the GPU's memory.
func desiredGPUs(ct state.SessionContainer, rec *state.Agent) []api.GPUSlice {
	var out []api.GPUSlice
	for _, sl := range ct.GPUs {
		g := api.GPUSlice{UUID: sl.UUID, Share: sl.Share, Whole: sl.Whole}
		if rec != nil {
			for _, d := range rec.GPUs {
				if d.UUID != sl.UUID {
					continue
				}
				g.Index, g.Minor, g.Fake = d.Index, d.Minor, d.Fake
				g.MemoryBytes = d.MemoryBytes
				if d.Shares > 0 && sl.Share < d.Shares {
					// share/shares of the memory, rounded down, without
					// the product overflowing.
					m := d.MemoryBytes
					g.MemoryBytes = m/d.Shares*sl.Share + m%d.Shares*sl.Share/d.Shares
				}
			}
		}
		out = append(out, g)
	}
	return out
}

// desiredMounts are the session's mounts, each folder's with its size
// limit as the folder's policy says now (state.FolderSizeLimit): an agent
// with project quotas sets it, and a policy changed while the session runs
// reaches the agent with its next desired state.
func desiredMounts(tx *state.Txn, s *state.Session) ([]api.Mount, error) {
	out := slices.Clone(nonNil(s.Mounts))
	for i, m := range out {
		if m.Folder == "" {
			continue
		}
		f, err := tx.Folder(m.Folder)
		if err != nil {
			return nil, err
		}
		if f == nil {
			continue // deleted: the agent fails the mount, not the list
		}
		limit, err := tx.FolderSizeLimit(f)
		if err != nil {
			return nil, err
		}
		if limit != nil {
			v := *limit // not the policy record's own
			out[i].LimitBytes = &v
		}
	}
	return out, nil
}

func desiredContainer(s *state.Session, ct state.SessionContainer, rec *state.Agent, mounts []api.Mount) api.DesiredContainer {
	env := maps.Clone(s.Env)
	if env == nil {
		env = map[string]string{}
	}
	// Set last, so a session cannot pose as another.
	env["BERTH_SESSION_ID"] = s.ID
	// Where the apps origin serves each http port, for apps that must
	// know their path (Jupyter's --ServerApp.base_url): in the
	// environment from the start, so it is part of the desired container.
	for _, p := range s.Ports {
		if p.Protocol == api.PortHTTP {
			env[apps.EnvName(p.Name)] = apps.Prefix(s.ID, p.Name)
		}
	}
	env["BERTH_CLUSTER_SIZE"] = strconv.Itoa(s.ClusterSize)
	env["BERTH_CONTAINER_INDEX"] = strconv.Itoa(ct.Index)
	cmd := slices.Clone(s.Command)
	if len(cmd) == 0 && s.Type == api.SessionInteractive {
		cmd = slices.Clone(keepAlive)
	}
	return api.DesiredContainer{ID: state.ContainerID(s.ID, ct.Index), SessionID: s.ID, Index: ct.Index, Image: s.Image,
		Command: nonNil(cmd), Env: env, Slots: ct.Slots.Clone(), Mounts: slices.Clone(mounts),
		GPUs: desiredGPUs(ct, rec), RunAsRoot: s.RunAsRoot,
		ClusterSize: max(s.ClusterSize, 1), Ports: slices.Clone(s.Ports), NoEgress: s.NoEgress}
}

// stopContainers lists what an agent must stop and remove at once: the
// containers on it of TERMINATING sessions, and those its last report
// (reported) still lists of sessions that have ended (a batch that exited,
// a session that ended while its agent was LOST). Taking the ended ones
// from the report, not from every ended session ever placed there, keeps
// the list as short as what really runs.
func stopContainers(tx *state.Txn, agent string, reported []api.ContainerReport) ([]string, error) {
	ss, err := tx.OccupyingOnAgent(agent)
	if err != nil {
		return nil, err
	}
	stop := map[string]bool{}
	for _, s := range ss {
		if s.Status != api.SessionTerminating {
			continue
		}
		for _, ct := range s.Containers {
			if ct.Agent == agent {
				stop[state.ContainerID(s.ID, ct.Index)] = true
			}
		}
	}
	for _, r := range reported {
		if r.SessionID == "" || stop[r.ID] {
			continue
		}
		s, err := tx.Session(r.SessionID)
		if err != nil {
			return nil, err
		}
		if s != nil && s.Status.Ended() {
			stop[r.ID] = true
		}
	}
	return slices.Sorted(maps.Keys(stop)), nil
}
