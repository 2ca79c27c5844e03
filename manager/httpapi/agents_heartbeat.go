package httpapi

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// agentHeartbeat is POST /v1/agents/{id}/heartbeat, on the leader (it is
// a write route: followers forward it). The beat and its report go to the
// leader's memory; Raft sees only what changed in the replicated record
// (see heartbeatUpdate), so a steady cluster writes nothing per beat.
func (a *API) agentHeartbeat(c *Call) error {
	rec, err := a.agentWithSecret(c.R.PathValue("id"), c.R)
	if err != nil {
		return err
	}
	// A manager restarted without -allow-simulated-agents keeps no
	// simulated agent alive: refused, it becomes LOST with its sessions.
	if err := a.simulatedAllowed(rec.Simulated); err != nil {
		return err
	}
	var hb api.AgentHeartbeat
	if err := decodeAgentReport(c, false, &hb); err != nil {
		return err
	}
	if hb.Images != nil { // nil: not reported, no change
		hb.Images = sortedImages(hb.Images)
	}
	if err := checkGPUs(hb.GPUs, hb.GPUShareQuantum); err != nil {
		return err
	}
	if hb.GPUs != nil {
		hb.GPUs = sortedGPUs(hb.GPUs)
	}
	now := a.now().UTC()
	before := a.agents.beat(rec.ID, now, &hb)
	a.agentMetrics.beats.Inc()
	if !slices.Equal(before, hb.Errors) && len(hb.Errors) > 0 {
		a.log.Warn("agent reports errors", "agent", rec.ID, "errors", hb.Errors)
	}
	if upd := heartbeatUpdate(rec, &hb, now); upd != nil {
		v, err := c.Propose(*upd)
		if err != nil {
			return err
		}
		if rec.Status != state.AgentAlive {
			a.log.Info("agent is back", "agent", rec.ID, "was", rec.Status)
		}
		rec = v.(*state.Agent)
	}
	// What the containers do moves their sessions along (sessions_report.go).
	if err := a.reportSessions(c, rec.ID, now, &hb); err != nil {
		return err
	}
	index, err := desiredIndex(a.cluster.State().Read(), rec)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.HeartbeatAnswer{Status: rec.Status, DesiredIndex: index})
}

// heartbeatUpdate is the Raft write a heartbeat needs, or nil: only a
// change of status (LOST → ALIVE), address, capacity, images, GPU
// inventory or share quantum, or a
// replicated last_heartbeat_at older than agentRecordEvery, is written.
func heartbeatUpdate(rec *state.Agent, hb *api.AgentHeartbeat, now time.Time) *fsm.AgentUpdate {
	u := fsm.AgentUpdate{ID: rec.ID}
	changed := false
	if rec.Status != state.AgentAlive {
		alive := state.AgentAlive
		u.Status, changed = &alive, true
	}
	if hb.Address != "" && hb.Address != rec.Address {
		u.Address, changed = &hb.Address, true
	}
	if hb.Capacity != nil && !maps.Equal(hb.Capacity, rec.Capacity) {
		u.Capacity, changed = &hb.Capacity, true
	}
	if hb.Images != nil && !slices.Equal(hb.Images, rec.Images) {
		u.Images, changed = &hb.Images, true
	}
	if hb.GPUs != nil && !slices.Equal(hb.GPUs, nonNil(rec.GPUs)) {
		u.GPUs, changed = &hb.GPUs, true
	}
	if hb.GPUShareQuantum != 0 && hb.GPUShareQuantum != rec.GPUShareQuantum {
		u.GPUShareQuantum, changed = &hb.GPUShareQuantum, true
	}
	if hb.FolderHosts != nil {
		if hosts := sortedHosts(hb.FolderHosts); !slices.Equal(hosts, nonNil(rec.FolderHosts)) {
			u.FolderHosts, changed = &hosts, true
		}
	}
	if !changed && now.Sub(rec.LastHeartbeatAt) < agentRecordEvery {
		return nil
	}
	u.LastHeartbeatAt = &now
	return &u
}

// desiredIndex is the index the agent's desired containers last changed
// at, which the heartbeat answer carries so the agent asks for them again
// only when it moved: the latest modify index of the agent's record and of
// the sessions occupying it. Only those are read (an agent's finished
// sessions grow without bound), so when the latest of them ends the value
// may go down: a different value, not only a higher one, means news.
func desiredIndex(tx *state.Txn, rec *state.Agent) (uint64, error) {
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

// maxDesiredWait bounds ?wait= so a forgotten request does not hold a
// connection for long.
const maxDesiredWait = 5 * time.Minute

// agentDesired is GET /v1/agents/{id}/desired: the containers the agent
// should run. With ?index=N it is a blocking query: the answer waits until
// the applied index passes N or ?wait= (default 30s) elapses, and either
// way carries the full current set and the index it was read at.
func (a *API) agentDesired(c *Call) error {
	rec, err := a.agentWithSecret(c.R.PathValue("id"), c.R)
	if err != nil {
		return err
	}
	index, wait, err := desiredQuery(c)
	if err != nil {
		return err
	}
	if index != nil {
		ctx, cancel := context.WithTimeout(c.R.Context(), wait)
		defer cancel()
		// Running out of wait is a normal answer; only the caller going
		// away ends the request.
		if _, err := a.cluster.WaitIndex(ctx, *index); err != nil && c.R.Context().Err() != nil {
			return err
		}
	}
	// The index is read before the state: the containers are at least as
	// new as the index says, so the agent's next ?index= misses nothing.
	applied := a.cluster.AppliedIndex()
	tx := a.cluster.State().Read()
	containers, err := desiredContainers(tx, rec.ID)
	if err != nil {
		return err
	}
	stop, err := a.stopContainers(tx, rec.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.DesiredState{Index: applied, Containers: containers, Stop: stop})
}

func desiredQuery(c *Call) (index *uint64, wait time.Duration, err error) {
	q := c.R.URL.Query()
	var bad apierr.Fields
	if s := q.Get("index"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			bad.Add("index", "index must be a whole number: the index of the previous answer")
		}
		index = &n
	}
	wait = 30 * time.Second
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxDesiredWait {
			bad.Add("wait", "wait must be a duration from 0s to %s, e.g. 30s", maxDesiredWait)
		}
		wait = d
	}
	return index, wait, bad.Err()
}
