package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/leader"
	"github.com/berth-cluster/berth/shared/api"
)

// agentHeartbeat is POST /v1/agents/{id}/heartbeat, on the leader (it is
// a write route: followers forward it). The handler authenticates the
// agent and checks its report; the leader keeps the beat and writes what
// changed (leader.Heartbeat), so a steady cluster writes nothing per beat.
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
	if hb.FolderHosts != nil {
		hb.FolderHosts = sortedHosts(hb.FolderHosts)
	}
	if rec, err = a.leader.Heartbeat(c.R.Context(), rec, &hb); err != nil {
		return err
	}
	index, err := leader.DesiredIndex(a.cluster.Read(), rec)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.HeartbeatAnswer{Status: rec.Status, DesiredIndex: index})
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
	tx := a.cluster.Read()
	containers, stop, err := a.leader.Desired(tx, rec.ID)
	if err != nil {
		return err
	}
	regs, err := a.desiredRegistries(tx, containers)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.DesiredState{Index: applied, Containers: containers, Stop: stop, Registries: regs})
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
