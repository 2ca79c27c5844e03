package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// An agent silent past the heartbeat timeout is DISCONNECTED, within its
// grace: its sessions stay RUNNING and keep their slots (a session needing
// them waits), the session view, the agent view, /v1/info and /metrics say
// so; a session terminated meanwhile is stopped when the agent reports
// again, and the one still running keeps its record.
func TestADisconnectedAgentKeepsItsSessionsUntilItComesBack(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":2,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`,
		func(cfg *server.Config) { cfg.HeartbeatTimeout, cfg.DisconnectGrace = time.Second, time.Hour })
	user := createUser(t, e.s, e.admin, "ann@example.com", "ann", api.RoleUser)
	token := testcluster.Login(t, e.s, user.User.Email, testPassword)
	keep, stop := e.mustCreate(token, oneCPU(nil)), e.mustCreate(token, oneCPU(nil))
	e.place(keep.ID, 1)
	e.place(stop.ID, 1)
	e.beat(running(keep.ID, 0, 0), running(stop.ID, 0, 0))
	before := e.waitStatus(keep.ID, api.SessionRunning)
	e.waitStatus(stop.ID, api.SessionRunning)

	testcluster.Eventually(t, 15*time.Second, func() error { // no more heartbeats
		if st := getAgent(t, e.s, e.admin, e.agent.ID).Status; st != api.AgentDisconnected {
			return fmt.Errorf("the silent agent is %s", st)
		}
		return nil
	})
	waiting := e.mustCreate(token, oneCPU(nil)) // the agent's two cores are held
	got := e.get(e.admin, keep.ID)
	if got.Status != api.SessionRunning || cpuOf(got.Occupied) != "1" ||
		!strings.Contains(got.StatusInfo, "agent "+e.agent.ID+" disconnected since ") {
		t.Fatalf("session on the disconnected agent: %s, %s cores held, status_info %q", got.Status, cpuOf(got.Occupied), got.StatusInfo)
	}
	ag := getAgent(t, e.s, e.admin, e.agent.ID)
	if cpuOf(ag.Occupied) != "2" || !strings.HasPrefix(ag.StatusInfo, "disconnected since ") {
		t.Errorf("agent view: %s cores occupied, status_info %q", cpuOf(ag.Occupied), ag.StatusInfo)
	}
	var list api.List[api.Agent]
	testcluster.Do(t, http.MethodGet, e.url("/v1/agents?status=DISCONNECTED"), e.admin, nil).JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != e.agent.ID {
		t.Errorf("?status=DISCONNECTED lists %+v", list.Items)
	}
	var info api.Info
	testcluster.Do(t, http.MethodGet, e.url("/v1/info"), e.admin, nil).JSON(t, &info)
	if info.Agents.Disconnected != 1 || info.Agents.Alive != 0 || info.Agents.Lost != 0 {
		t.Errorf("info counts %+v, want 1 disconnected", info.Agents)
	}
	metrics := testcluster.Do(t, http.MethodGet, e.url("/metrics"), "", nil)
	for _, line := range []string{`berth_agents{simulated="false",status="DISCONNECTED"} 1`, `berth_agents_disconnected_total 1`, `berth_agents_lost_total 0`} {
		if !strings.Contains(string(metrics.Body), line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	e.terminate(t, token, stop.ID)
	if w := e.get(e.admin, waiting.ID); w.Status != api.SessionPending {
		t.Fatalf("a session needing the disconnected agent's slots is %s", w.Status)
	}

	// Back: both containers still run; the terminated one is to stop.
	e.beat(running(keep.ID, 0, 1), running(stop.ID, 0, 1))
	if st := getAgent(t, e.s, e.admin, e.agent.ID).Status; st != api.AgentAlive {
		t.Fatalf("after its heartbeat the agent is %s", st)
	}
	testcluster.Eventually(t, 15*time.Second, func() error {
		if ds := e.desired(); !slices.Equal(ds.Stop, []string{stop.ID + "-0"}) {
			return fmt.Errorf("desired stop list %v", ds.Stop)
		}
		return nil
	})
	e.beat(running(keep.ID, 0, 2)) // it stopped
	e.waitStatus(stop.ID, api.SessionTerminated)
	after := e.get(e.admin, keep.ID)
	if after.Status != api.SessionRunning || !after.StartedAt.Equal(*before.StartedAt) || len(after.StatusHistory) != len(before.StatusHistory) ||
		strings.Contains(after.StatusInfo, "disconnected") {
		t.Errorf("the session that ran on: %s, started %v (was %v), history %v, status_info %q",
			after.Status, after.StartedAt, before.StartedAt, after.StatusHistory, after.StatusInfo)
	}
}

// A rogue agent can neither bring a disconnected agent back nor move its
// sessions: a heartbeat under the disconnected agent's id with the rogue's
// own secret is refused (401) and changes nothing, and the rogue's report
// of the other agent's container (exited) is not news about that session.
// The same report from the agent itself ends the session, so the attack
// would show if the manager took reports for containers not on the
// reporter.
func TestARogueAgentCannotSpeakForADisconnectedAgent(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":2,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`,
		func(cfg *server.Config) { cfg.HeartbeatTimeout, cfg.DisconnectGrace = time.Second, time.Hour })
	user := createUser(t, e.s, e.admin, "ann@example.com", "ann", api.RoleUser)
	token := testcluster.Login(t, e.s, user.User.Email, testPassword)
	s := e.mustCreate(token, oneCPU(map[string]any{"type": "batch", "command": []string{"train"}}))
	e.place(s.ID, 1)
	e.beat(running(s.ID, 0, 0))
	e.waitStatus(s.ID, api.SessionRunning)
	rogue := register(t, e.s, registration("10.0.0.66:6001"))
	exited := running(s.ID, 0, 1)
	exited.Status, exited.ExitCode = api.ContainerExited, new(int)
	testcluster.Eventually(t, 15*time.Second, func() error {
		heartbeat(t, e.s, rogue, api.AgentHeartbeat{Capacity: registration("").Capacity}) // the rogue stays ALIVE
		if st := getAgent(t, e.s, e.admin, e.agent.ID).Status; st != api.AgentDisconnected {
			return fmt.Errorf("the silent agent is %s", st)
		}
		return nil
	})

	r := agentCall(t, e.s, http.MethodPost, "/v1/agents/"+e.agent.ID+"/heartbeat", "", rogue.Secret,
		api.AgentHeartbeat{Capacity: registration("").Capacity, Containers: []api.ContainerReport{exited}})
	wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
	heartbeat(t, e.s, rogue, api.AgentHeartbeat{Capacity: registration("").Capacity, Containers: []api.ContainerReport{exited}})
	if st := getAgent(t, e.s, e.admin, e.agent.ID).Status; st != api.AgentDisconnected {
		t.Errorf("after the rogue's heartbeats the disconnected agent is %s", st)
	}
	if got := e.get(e.admin, s.ID); got.Status != api.SessionRunning {
		t.Fatalf("the rogue's report moved the session to %s", got.Status)
	}

	e.beat(exited) // the agent itself, back: its report counts
	if got := e.waitStatus(s.ID, api.SessionTerminated); got.ExitCode == nil || *got.ExitCode != 0 {
		t.Errorf("the agent's own report ended the session with exit code %v, want 0", got.ExitCode)
	}
}
