package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/leader"
	"github.com/berth-cluster/berth/manager/state"
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

// agentReport is POST /v1/agents/{id}/report, on the leader: the agent's
// containers that changed state, as they change. Authenticated like a
// heartbeat; the leader moves only containers placed on this agent
// (leader.Report), so an agent's secret reaches no other agent's sessions.
func (a *API) agentReport(c *Call) error {
	rec, err := a.agentWithSecret(c.R.PathValue("id"), c.R)
	if err != nil {
		return err
	}
	if err := a.simulatedAllowed(rec.Simulated); err != nil {
		return err
	}
	var in api.AgentReport
	if err := c.Decode(&in); err != nil {
		return err
	}
	if in.Containers == nil {
		// As in a heartbeat, a state the managers do not know is ignored.
		return apierr.Field(apierr.Invalid, "containers", "containers is required: the containers whose state changed")
	}
	if err := a.leader.Report(c.R.Context(), rec.ID, in.Containers); err != nil {
		return err
	}
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

// maxDesiredWait bounds a blocking query's ?wait= so a forgotten request
// does not hold a connection for long.
const maxDesiredWait = 5 * time.Minute

// agentDesired is GET /v1/agents/{id}/desired: the containers the agent
// should run. With ?index=N it is a blocking query: the answer waits until
// the agent's desired state changes past N (state.DesiredIndex: an entry
// that places on it, ends or reports one of its sessions, changes its
// record, or a folder, policy, keypair or registry) or ?wait= (default 30s)
// elapses, and either way carries the full current set and the index it
// was read at. Entries that concern other agents do not wake it.
func (a *API) agentDesired(c *Call) error {
	rec, err := a.agentWithSecret(c.R.PathValue("id"), c.R)
	if err != nil {
		return err
	}
	index, wait, err := blockingQuery(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.R.Context(), wait)
	defer cancel()
	for {
		tx := a.cluster.Read()
		// The mark and the containers come from one read: the agent's
		// next ?index= misses nothing written after it.
		at, watch, err := tx.DesiredIndex(rec.ID)
		if err != nil {
			return err
		}
		if index == nil || at > *index || ctx.Err() != nil {
			return a.answerDesired(c, tx, rec.ID, at)
		}
		// Running out of wait is a normal answer; only the caller going
		// away ends the request.
		if err := watch.Wait(ctx); err != nil && c.R.Context().Err() != nil {
			return err
		}
	}
}

func (a *API) answerDesired(c *Call, tx *state.Txn, agent string, at uint64) error {
	containers, stop, err := a.leader.Desired(tx, agent)
	if err != nil {
		return err
	}
	regs, err := a.desiredRegistries(tx, containers)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.DesiredState{Index: at, Containers: containers, Stop: stop, Registries: regs})
}

// blockingQuery reads ?index= (absent: answer at once) and ?wait= of a
// blocking query (the desired state, a session).
func blockingQuery(c *Call) (index *uint64, wait time.Duration, err error) {
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
