package httpapi

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// The agent's side of sessions: what it should run and stop (the desired
// query) and what its heartbeats tell about the containers it runs.

// Container statuses of the agent's vocabulary that the manager reasons
// about (the agent reports created, running, exited, failed, gone).
const (
	containerCreated = "created"
	containerRunning = "running"
	containerExited  = "exited"
	containerFailed  = "failed"
	containerGone    = "gone"
)

// containerEnded: exited, failed or gone; the records never revive one.
func containerEnded(status string) bool {
	return status == containerExited || status == containerFailed || status == containerGone
}

// keepAlive is what an interactive session without a command runs: it
// stays up for exec and ends at once on SIGTERM (a shell as PID 1 would
// ignore it and wait for the stop grace). The image needs a /bin/sh.
var keepAlive = []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"}

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
		switch s.Status {
		case api.SessionScheduled, api.SessionPreparing, api.SessionRunning:
		default:
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
// still lists of sessions that have ended (a batch that exited, a session
// that ended while its agent was LOST). Taking the ended ones from the
// report, not from every ended session ever placed there, keeps the list
// as short as what really runs.
func (a *API) stopContainers(tx *state.Txn, agent string) ([]string, error) {
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
	for _, r := range a.agents.reported(agent) {
		if r.SessionID == "" || stop[r.ID] {
			continue
		}
		s, err := tx.Session(r.SessionID)
		if err != nil {
			return nil, err
		}
		if s != nil && sessionEnded(s.Status) {
			stop[r.ID] = true
		}
	}
	return slices.Sorted(maps.Keys(stop)), nil
}

// reported is the containers of the agent's last heartbeat here.
func (l *agentLiveness) reported(id string) []api.ContainerReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.beats[id]; b != nil {
		return b.containers
	}
	return nil
}

// sessionNews compares an agent's report with the session records and
// returns what differs: a container's status, exit code or reason. When
// the report is full (the agent could list its runtime), a container the
// records place there that it no longer lists is news too: gone —
// "stopped" for a TERMINATING session (that is how TERMINATING ends), else
// vanished. Containers not yet started are not missing: they are SCHEDULED.
func sessionNews(tx *state.Txn, agent string, reported []api.ContainerReport, full bool) ([]fsm.ContainerReport, error) {
	var news []fsm.ContainerReport
	listed := map[string]bool{}
	for _, r := range reported {
		listed[r.ID] = true
		if r.SessionID == "" || r.ID != state.ContainerID(r.SessionID, r.Index) {
			continue // not a container of Berth's naming: nothing to record
		}
		s, err := tx.Session(r.SessionID)
		if err != nil {
			return nil, err
		}
		if s == nil || !state.Occupying(s.Status) {
			continue
		}
		ct := containerOf(s, r.Index)
		if ct == nil || ct.Agent != agent || containerEnded(ct.Status) {
			continue // an ended container stays ended: a later report changes nothing
		}
		// An empty reason says nothing new (the record keeps the last one).
		if ct.Status != r.Status || !sameExit(ct.ExitCode, r.ExitCode) || (r.Reason != "" && ct.Reason != r.Reason) ||
			(r.Address != "" && ct.Address != r.Address) {
			news = append(news, fsm.ContainerReport{SessionID: s.ID, Index: r.Index, Status: r.Status,
				ExitCode: r.ExitCode, Reason: r.Reason, Address: r.Address})
		}
	}
	if full {
		missing, err := missingContainers(tx, agent, listed)
		if err != nil {
			return nil, err
		}
		news = append(news, missing...)
	}
	slices.SortFunc(news, func(x, y fsm.ContainerReport) int {
		return cmp.Or(cmp.Compare(x.SessionID, y.SessionID), cmp.Compare(x.Index, y.Index))
	})
	return news, nil
}

func missingContainers(tx *state.Txn, agent string, listed map[string]bool) ([]fsm.ContainerReport, error) {
	ss, err := tx.OccupyingOnAgent(agent)
	if err != nil {
		return nil, err
	}
	var out []fsm.ContainerReport
	for _, s := range ss {
		if !state.Occupying(s.Status) {
			continue
		}
		for _, ct := range s.Containers {
			if ct.Agent != agent || containerEnded(ct.Status) || listed[state.ContainerID(s.ID, ct.Index)] {
				continue
			}
			switch {
			case s.Status == api.SessionTerminating:
				out = append(out, fsm.ContainerReport{SessionID: s.ID, Index: ct.Index, Status: containerGone, Reason: "stopped"})
			case ct.Status == containerCreated || ct.Status == containerRunning:
				// The agent reported it before and lists it no more.
				out = append(out, fsm.ContainerReport{SessionID: s.ID, Index: ct.Index, Status: containerGone,
					Reason: "container vanished from the agent"})
			}
		}
	}
	return out, nil
}

func containerOf(s *state.Session, index int) *state.SessionContainer {
	for i := range s.Containers {
		if s.Containers[i].Index == index {
			return &s.Containers[i]
		}
	}
	return nil
}

// reportSessions turns a heartbeat's container report into at most one
// SessionsReport, and notes busy CPU as activity. A steady cluster writes
// nothing: only differences from the records are proposed, and the same
// news not again for a while (see sessionTracker.fresh).
func (a *API) reportSessions(c *Call, agent string, now time.Time, hb *api.AgentHeartbeat) error {
	tx := a.cluster.State().Read()
	if err := a.sessions.noteCPU(tx, agent, now, hb.Containers); err != nil {
		return err
	}
	news, err := sessionNews(tx, agent, hb.Containers, hb.Containers != nil)
	if err != nil {
		return err
	}
	news = a.sessions.fresh(news, now)
	if len(news) == 0 {
		return nil
	}
	resp, err := a.cluster.Propose(c.R.Context(), fsm.SessionsReport{At: now, Agent: agent, Reports: news})
	if err != nil {
		return err
	}
	if resp.Err != nil {
		// The FSM judged the news stale (the session moved on meanwhile):
		// the agent's next report is compared with the new records.
		a.log.Info("container report not applied", "agent", agent, "reason", resp.Err)
	}
	return nil
}
