package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

func allowSimulated(cfg *server.Config) { cfg.AllowSimulatedAgents = true }

// simulated is a registration of a simulated agent (berth-agent -runtime sim).
func simulated(addr string) api.AgentRegister {
	in := registration(addr, api.Image{Name: baseImage, Digest: "sha256:aa"})
	in.Simulated = true
	in.Node.ContainerdVersion = "berth-sim/1"
	return in
}

const simulatedRefusal = "this cluster does not accept simulated agents (berth-agent -runtime sim): nothing placed on one runs; " +
	"for benchmarks and development, start the managers with -allow-simulated-agents"

// Attack: a simulated agent, with a good join token, tries to join a
// cluster whose managers do not accept simulated agents. It is refused with
// the reason and nothing is written; the same registration at a manager
// started with -allow-simulated-agents is admitted, so the flag, not the
// token, is what keeps it out.
func TestASimulatedAgentIsRefusedUnlessTheManagersAllowThem(t *testing.T) {
	s := testcluster.StartDev(t, withAgentToken).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	before := lastIndex(s)
	r := agentCall(t, s, http.MethodPost, "/v1/agents/register", testAgentToken, "", simulated("10.0.0.9:6001"))
	p := wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)
	wantFields(t, p, map[string][]string{"simulated": {simulatedRefusal}})
	if after := lastIndex(s); after != before {
		t.Fatalf("the refused registration moved the log from %d to %d", before, after)
	}
	r = testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents", admin, nil)
	var l api.List[api.Agent]
	r.JSON(t, &l)
	if len(l.Items) != 0 {
		t.Fatalf("agents after the refusal: %+v", l.Items)
	}
	// A real agent still joins this cluster.
	register(t, s, registration("10.0.0.8:6001"))

	allowing := testcluster.StartDev(t, withAgentToken, allowSimulated).Servers[0]
	ag := register(t, allowing, simulated("10.0.0.9:6001"))
	got := getAgent(t, allowing, testcluster.Login(t, allowing, testcluster.AdminEmail, testcluster.AdminPassword), ag.ID)
	if !got.Simulated {
		t.Fatalf("admitted simulated agent shows simulated=false: %+v", got)
	}
}

// Attack: a known agent that was real registers again (its id and secret)
// saying it is now simulated, at managers that do not accept simulated
// agents: refused, and its record stays real.
func TestAKnownAgentCannotTurnSimulatedWhereThatIsRefused(t *testing.T) {
	s := testcluster.StartDev(t, withAgentToken).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	in := registration("10.0.0.8:6001")
	ag := register(t, s, in)
	in.ID, in.Simulated = ag.ID, true
	r := agentCall(t, s, http.MethodPost, "/v1/agents/register", "", ag.Secret, in)
	wantFields(t, wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden), map[string][]string{"simulated": {simulatedRefusal}})
	if got := getAgent(t, s, admin, ag.ID); got.Simulated {
		t.Fatalf("refused re-registration marked the agent simulated: %+v", got)
	}
}

// Attack: a simulated agent, once admitted, registers again claiming to be
// real, so that what runs "on" it would look real. The managers keep it
// simulated: it said so once, and a node that ran nothing cannot have
// started running things by saying so. (The marking is the agent's own
// word: an agent that lies from its first registration is not caught;
// that is honesty, not a security boundary.)
func TestASimulatedAgentStaysSimulatedWhateverItSaysLater(t *testing.T) {
	s := testcluster.StartDev(t, withAgentToken, allowSimulated).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	in := simulated("10.0.0.9:6001")
	ag := register(t, s, in)
	in.ID, in.Simulated = ag.ID, false
	in.Node.ContainerdVersion = "1.7.24"
	r := agentCall(t, s, http.MethodPost, "/v1/agents/register", "", ag.Secret, in)
	wantStatus(t, r, http.StatusOK)
	got := getAgent(t, s, admin, ag.ID)
	if !got.Simulated || got.Node.ContainerdVersion != "1.7.24" {
		t.Fatalf("after registering again as real: simulated=%v containerd %q; want still simulated (the rest updated)", got.Simulated, got.Node.ContainerdVersion)
	}
}

// A simulated agent recorded while the managers accepted them (an earlier
// run with -allow-simulated-agents) is refused by managers that no longer
// do: its heartbeats and registrations get 403 with the reason, so it
// becomes LOST and nothing more is placed on it.
func TestARecordedSimulatedAgentIsRefusedOnceTheFlagIsGone(t *testing.T) {
	s := testcluster.StartDev(t, withAgentToken).Servers[0]
	now := time.Now().UTC()
	rec := state.Agent{ID: "agent-simulated000", Secret: strings.Repeat("s", 40), Address: "10.0.0.9:6001", Status: state.AgentAlive,
		Schedulable: true, Capacity: mustSlots(`{"cpu":7,"mem":16106127360}`), LastHeartbeatAt: now, Simulated: true}
	resp, err := s.Propose(context.Background(), fsm.AgentPut{Agent: rec, At: now})
	if err != nil || resp.Err != nil {
		t.Fatalf("record the agent: %v %v", err, resp.Err)
	}
	ag := api.AgentRegistered{ID: rec.ID, Secret: rec.Secret}
	r := agentCall(t, s, http.MethodPost, "/v1/agents/"+ag.ID+"/heartbeat", "", ag.Secret, api.AgentHeartbeat{Address: rec.Address})
	wantFields(t, wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden), map[string][]string{"simulated": {simulatedRefusal}})
	// Saying it is real now does not help: it said otherwise before.
	in := registration(rec.Address)
	in.ID = ag.ID
	r = agentCall(t, s, http.MethodPost, "/v1/agents/register", "", ag.Secret, in)
	wantFields(t, wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden), map[string][]string{"simulated": {simulatedRefusal}})
	// A stranger learns nothing: a wrong secret is 401 before the check.
	r = agentCall(t, s, http.MethodPost, "/v1/agents/"+ag.ID+"/heartbeat", "", strings.Repeat("x", 40), api.AgentHeartbeat{})
	wantStatus(t, r, http.StatusUnauthorized)
}

// A simulated agent is marked as such wherever people look: GET
// /v1/agents, /metrics, and the status_info of every session placed on it
// (the list, the session, the CSV export), whatever its status.
func TestSimulatedAgentsAndTheirSessionsSaySo(t *testing.T) {
	e := newSessionEnv(t, "10.0.0.8:6001", `{"cpu":1,"mem":1073741824}`, `{}`, allowSimulated)
	sim := register(t, e.s, simulated("10.0.0.9:6001"))

	r := testcluster.Do(t, http.MethodGet, e.url("/v1/agents"), e.admin, nil)
	var l api.List[api.Agent]
	r.JSON(t, &l)
	if len(l.Items) != 2 {
		t.Fatalf("agents %+v", l.Items)
	}
	for _, ag := range l.Items {
		if want := ag.ID == sim.ID; ag.Simulated != want {
			t.Errorf("agent %s: simulated=%v, want %v", ag.ID, ag.Simulated, want)
		}
	}
	if !strings.Contains(string(r.Body), `"simulated":false`) {
		t.Errorf("a real agent's view must say simulated false, not leave it out: %s", r.Body)
	}

	r = testcluster.Do(t, http.MethodGet, e.url("/metrics"), "", nil)
	for _, line := range []string{
		`berth_agents{simulated="false",status="ALIVE"} 1`,
		`berth_agents{simulated="true",status="ALIVE"} 1`,
		`berth_agent_capacity{agent="` + sim.ID + `",simulated="true",slot="cpu"} 7`,
		`berth_agent_capacity{agent="` + e.agent.ID + `",simulated="false",slot="cpu"} 1`,
	} {
		if !strings.Contains(string(r.Body), line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	// One on the real agent while the simulated one is drained, then one
	// of two cores, which only the simulated agent (7 cores) can hold.
	schedulable := func(on bool) {
		r := testcluster.Do(t, http.MethodPatch, e.url("/v1/agents/"+sim.ID), e.admin, map[string]any{"schedulable": on})
		wantStatus(t, r, http.StatusOK)
	}
	schedulable(false)
	small := e.mustCreate(e.admin, oneCPU(nil))
	if on := e.waitStatus(small.ID, api.SessionScheduled).Containers[0].Agent; on != e.agent.ID {
		t.Fatalf("placed on %s", on)
	}
	schedulable(true)
	big := e.mustCreate(e.admin, map[string]any{"image": baseImage, "type": "interactive", "resources": map[string]any{"cpu": 2, "mem": 1 << 30}})
	got := e.waitStatus(big.ID, api.SessionScheduled)
	want := "placed on simulated agent " + sim.ID + ": nothing of this session really runs (berth-agent -runtime sim)"
	if got.StatusInfo != want || got.Containers[0].Agent != sim.ID {
		t.Fatalf("session on the simulated agent: status_info %q on %s, want %q", got.StatusInfo, got.Containers[0].Agent, want)
	}
	if info := e.get(e.admin, small.ID).StatusInfo; strings.Contains(info, "simulated") {
		t.Fatalf("session on the real agent says %q", info)
	}
	r = testcluster.Do(t, http.MethodGet, e.url("/v1/sessions"), e.admin, nil)
	if !strings.Contains(string(r.Body), want) {
		t.Errorf("the session list does not say it: %s", r.Body)
	}
	r = testcluster.Do(t, http.MethodGet, e.url("/v1/export/sessions.csv"), e.admin, nil)
	if !strings.Contains(string(r.Body), want) {
		t.Errorf("the CSV export does not say it: %s", r.Body)
	}
	// Ended, it still says where it was.
	e.terminate(t, e.admin, big.ID)
	hb := api.AgentHeartbeat{Address: "10.0.0.9:6001", Containers: []api.ContainerReport{}}
	r = agentCall(t, e.s, http.MethodPost, "/v1/agents/"+sim.ID+"/heartbeat", "", sim.Secret, hb)
	wantStatus(t, r, http.StatusOK)
	if ended := e.waitStatus(big.ID, api.SessionTerminated); !strings.Contains(ended.StatusInfo, want) {
		t.Fatalf("terminated session's status_info %q", ended.StatusInfo)
	}
}
