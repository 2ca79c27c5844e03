package httpapi_test

import (
	"context"
	"fmt"
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

// report posts an agent's report of changed containers with its secret.
func report(t *testing.T, e *sessionEnv, ag api.AgentRegistered, cs ...api.ContainerReport) *testcluster.Response {
	t.Helper()
	if cs == nil {
		cs = []api.ContainerReport{}
	}
	return agentCall(t, e.s, http.MethodPost, "/v1/agents/"+ag.ID+"/report", "", ag.Secret, api.AgentReport{Containers: cs})
}

func containerReport(id string, index int, status api.ContainerStatus, code *int) api.ContainerReport {
	return api.ContainerReport{ID: fmt.Sprintf("%s-%d", id, index), SessionID: id, Index: index, Status: status, ExitCode: code}
}

// A report moves a session as soon as it arrives: RUNNING, then ended,
// with no heartbeat in between.
func TestAReportMovesTheSessionAtOnce(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	s := e.mustCreate(e.admin, oneCPU(nil))
	e.place(s.ID, 1)

	wantStatus(t, report(t, e, e.agent, containerReport(s.ID, 0, api.ContainerRunning, nil)), http.StatusNoContent)
	// No wait: the answer came after the news were applied.
	if got := e.get(e.admin, s.ID); got.Status != api.SessionRunning {
		t.Fatalf("after the report the session is %s (%s), want RUNNING", got.Status, got.StatusInfo)
	}
	code := 3
	wantStatus(t, report(t, e, e.agent, containerReport(s.ID, 0, api.ContainerExited, &code)), http.StatusNoContent)
	got := e.get(e.admin, s.ID)
	if got.Status != api.SessionTerminated || got.ExitCode == nil || *got.ExitCode != 3 {
		t.Fatalf("after the exit the session is %s, exit code %v, want TERMINATED with 3", got.Status, got.ExitCode)
	}
	// A late report of the container running revives nothing.
	wantStatus(t, report(t, e, e.agent, containerReport(s.ID, 0, api.ContainerRunning, nil)), http.StatusNoContent)
	if got := e.get(e.admin, s.ID); got.Status != api.SessionTerminated {
		t.Fatalf("a stale report moved the ended session to %s", got.Status)
	}
}

// A container the agent removed is reported gone: its TERMINATING session
// ends.
func TestAGoneReportEndsATerminatingSession(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	s := e.mustCreate(e.admin, oneCPU(nil))
	e.place(s.ID, 1)
	wantStatus(t, report(t, e, e.agent, containerReport(s.ID, 0, api.ContainerRunning, nil)), http.StatusNoContent)
	e.terminate(t, e.admin, s.ID)
	gone := containerReport(s.ID, 0, api.ContainerGone, nil)
	gone.Reason = "stopped"
	wantStatus(t, report(t, e, e.agent, gone), http.StatusNoContent)
	if got := e.get(e.admin, s.ID); got.Status != api.SessionTerminated {
		t.Fatalf("after the gone report the session is %s, want TERMINATED", got.Status)
	}
}

// The attack: an agent with a valid secret of its own reports another
// agent's container as running, exited and gone, or presents its secret
// under the other agent's id. Nothing moves. The control — the same
// reports by the agent the container is placed on — moves the session,
// so the refusal is the agent check, not a malformed report.
func TestARogueAgentsReportMovesNoOtherAgentsContainers(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	rogue := register(t, e.s, registration("10.0.0.66:6001"))
	s := e.mustCreate(e.admin, oneCPU(nil))
	e.place(s.ID, 1)
	code := 0
	attacks := []api.ContainerReport{
		containerReport(s.ID, 0, api.ContainerRunning, nil),
		containerReport(s.ID, 0, api.ContainerExited, &code),
		containerReport(s.ID, 0, api.ContainerGone, nil),
		containerReport(s.ID, 0, api.ContainerFailed, nil),
	}
	for _, r := range attacks {
		wantStatus(t, report(t, e, rogue, r), http.StatusNoContent)
		if got := e.get(e.admin, s.ID); got.Status != api.SessionScheduled || got.Containers[0].Status != api.ContainerScheduled {
			t.Fatalf("the rogue agent's %s report moved the session to %s (container %s)", r.Status, got.Status, got.Containers[0].Status)
		}
	}
	// Its secret does not open the other agent's path.
	r := agentCall(t, e.s, http.MethodPost, "/v1/agents/"+e.agent.ID+"/report", "", rogue.Secret, api.AgentReport{Containers: attacks[:1]})
	wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
	r = agentCall(t, e.s, http.MethodPost, "/v1/agents/"+e.agent.ID+"/report", "", "", api.AgentReport{Containers: attacks[:1]})
	wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
	if got := e.get(e.admin, s.ID); got.Status != api.SessionScheduled {
		t.Fatalf("a refused report moved the session to %s", got.Status)
	}

	// Control: the agent it is placed on.
	wantStatus(t, report(t, e, e.agent, attacks[0]), http.StatusNoContent)
	if got := e.get(e.admin, s.ID); got.Status != api.SessionRunning {
		t.Fatalf("the placed agent's report left the session %s", got.Status)
	}
}

func TestAReportNeedsItsContainers(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	r := agentCall(t, e.s, http.MethodPost, "/v1/agents/"+e.agent.ID+"/report", "", e.agent.Secret, map[string]any{})
	wantFields(t, wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation), map[string][]string{
		"containers": {"containers is required: the containers whose state changed"},
	})
	r = agentCall(t, e.s, http.MethodPost, "/v1/agents/"+e.agent.ID+"/report", "", e.agent.Secret, map[string]any{"containers": []any{}, "extra": 1})
	wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
}

// Attack: a simulated agent recorded while the managers accepted them
// reports a container at managers that no longer do. Refused with the
// reason, and nothing is written; the same report at managers that accept
// simulated agents is taken (204), so the refusal is the flag's.
func TestASimulatedAgentsReportIsRefusedWhereSimulatedAgentsAre(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []func(*server.Config)
		allow bool
	}{
		{"refused without -allow-simulated-agents", []func(*server.Config){withAgentToken}, false},
		{"taken with it", []func(*server.Config){withAgentToken, allowSimulated}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testcluster.StartDev(t, tc.opts...).Servers[0]
			now := time.Now().UTC()
			rec := state.Agent{ID: "agent-simulated000", Secret: strings.Repeat("s", 40), Address: "10.0.0.9:6001", Status: state.AgentAlive,
				Schedulable: true, Capacity: mustSlots(`{"cpu":7,"mem":16106127360}`), LastHeartbeatAt: now, Simulated: true}
			if resp, err := s.Propose(context.Background(), fsm.AgentPut{Agent: rec, At: now}); err != nil || resp.Err != nil {
				t.Fatalf("record the agent: %v %v", err, resp)
			}
			before := lastIndex(s)
			r := agentCall(t, s, http.MethodPost, "/v1/agents/"+rec.ID+"/report", "", rec.Secret,
				api.AgentReport{Containers: []api.ContainerReport{{ID: "s-x-0", SessionID: "s-x", Status: api.ContainerRunning}}})
			if tc.allow {
				wantStatus(t, r, http.StatusNoContent)
				return
			}
			wantFields(t, wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden), map[string][]string{"simulated": {simulatedRefusal}})
			if after := lastIndex(s); after != before {
				t.Fatalf("the refused report moved the log from %d to %d", before, after)
			}
		})
	}
}
