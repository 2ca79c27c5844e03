package agent_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Agent faults end to end, on real containers: an agent killed (its
// process gone, its containers running on) becomes LOST after the
// heartbeat timeout, its sessions ERROR agent-lost with their slots freed,
// and what waited for those slots runs elsewhere; restarted, it is ALIVE
// again and kills the containers of the sessions that ended meanwhile.
func TestKilledAgentIsLostAndItsStaleContainersDieWhenItReturns(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	// The grace equals the timeout: LOST right after DISCONNECTED (the
	// grace itself is TestAStoppedAgentKeepsItsSessionsForTheGrace's).
	mc := startMultiCluster(t, func(cfg *server.Config) { cfg.HeartbeatTimeout, cfg.DisconnectGrace = timeout, timeout })
	// The user may hold one core: a second session waits for the first.
	mc.want(mc.do(mc.admin, http.MethodPatch, "/v1/resource-policies/default",
		map[string]any{"total_resource_slots": map[string]any{"cpu": 1}}), http.StatusOK)

	first := mc.wait(mc.startCluster(1, 1).ID, api.SessionRunning)
	second := mc.startCluster(1, 1)
	if got := mc.get(second.ID); got.Status != api.SessionPending {
		t.Fatalf("the second session is %s (%s), want PENDING behind the keypair's one core", got.Status, got.StatusInfo)
	}
	lostID := first.Containers[0].Agent
	lost := mc.agents[lostID]
	if lost == nil {
		t.Fatalf("the session runs on %s, not one of the test's agents", lostID)
	}
	containerID := first.ID + "-0"

	// Timed from before the stop: the agent sends no heartbeat after it,
	// while the stop itself (its loops and stops ending) takes a while.
	killed := time.Now()
	lost.stop()
	var lostAfter time.Duration
	testcluster.Eventually(t, slowMachine, func() error {
		var ag api.Agent
		mc.do(mc.admin, http.MethodGet, "/v1/agents/"+lostID, nil).JSON(t, &ag)
		if ag.Status != api.AgentLost {
			return fmt.Errorf("agent %s is %s", lostID, ag.Status)
		}
		lostAfter = time.Since(killed)
		return nil
	})
	t.Logf("agent LOST %s after it was killed (timeout %s, heartbeats every 200ms)", lostAfter, timeout)
	if lostAfter < timeout-200*time.Millisecond {
		t.Errorf("agent LOST %s after its last heartbeat at the earliest, before the %s timeout", lostAfter, timeout)
	}

	ended := mc.wait(first.ID, api.SessionError)
	if !strings.HasPrefix(ended.StatusInfo, "agent-lost: last heartbeat ") || ended.Occupied[slots.CPU] != 0 {
		t.Fatalf("session on the lost agent: status_info %q, occupied %v", ended.StatusInfo, ended.Occupied)
	}
	moved := mc.wait(second.ID, api.SessionRunning)
	if ag := moved.Containers[0].Agent; ag == lostID {
		t.Fatalf("the waiting session was placed on the LOST agent %s", ag)
	}
	if _, ok := mc.containers(lost)[containerID]; !ok {
		t.Fatalf("container %s died with its agent; a killed agent's containers run on", containerID)
	}

	a, stop := runRealAgent(t, lost.cfg)
	lost.a, lost.stop = a, stop
	if a.ID() != lostID {
		t.Fatalf("the restarted agent came back as %s, not %s", a.ID(), lostID)
	}
	testcluster.Eventually(t, slowMachine, func() error {
		var ag api.Agent
		mc.do(mc.admin, http.MethodGet, "/v1/agents/"+lostID, nil).JSON(t, &ag)
		if ag.Status != api.AgentAlive {
			return fmt.Errorf("agent %s is %s", lostID, ag.Status)
		}
		if _, ok := mc.containers(lost)[containerID]; ok {
			return fmt.Errorf("the stale container %s still runs", containerID)
		}
		return nil
	})
	if got := mc.get(first.ID); got.Status != api.SessionError {
		t.Fatalf("the ended session came back as %s", got.Status)
	}
	// The agent's report of the removal arrives with its next heartbeat;
	// from then on nothing differs.
	testcluster.Eventually(t, slowMachine, func() error {
		r := mc.do(mc.admin, http.MethodPost, "/v1/maintenance/recalculate-usage", nil)
		mc.want(r, http.StatusOK)
		var rec api.UsageRecalculation
		r.JSON(t, &rec)
		if len(rec.Drift) != 0 {
			return fmt.Errorf("recalculate usage after the fault found %+v", rec.Drift)
		}
		return nil
	})
	mc.endAndClean(moved)
}

// containerd crashing and coming back under a running agent leaves the
// session's container as it was (the shim keeps it; the same container,
// not a new one, answers afterwards), and the agent goes on without a
// restart of its own.
func TestContainerdRestartedUnderARunningAgent(t *testing.T) {
	t.Parallel()
	sc := startSessionCluster(t, 0)
	s := sc.wait(sc.start(api.SessionInteractive, 1).ID, api.SessionRunning)
	execIn := func(cmd ...string) (api.ExecResult, int) {
		r := sc.do(sc.user, http.MethodPost, "/v1/sessions/"+s.ID+"/exec", map[string]any{"command": cmd})
		var res api.ExecResult
		if r.Status == http.StatusOK {
			r.JSON(t, &res)
		}
		return res, r.Status
	}
	if res, code := execIn("touch", "/tmp/before-the-crash"); code != http.StatusOK || res.ExitCode != 0 {
		t.Fatalf("exec before the crash: %d %+v", code, res)
	}

	testenv.RestartContainerd(t, sc.socket)

	testcluster.Eventually(t, slowMachine, func() error {
		res, code := execIn("cat", "/tmp/before-the-crash")
		if code != http.StatusOK || res.ExitCode != 0 {
			return fmt.Errorf("exec after the restart: %d %+v", code, res)
		}
		return nil
	})
	if got := sc.get(s.ID); got.Status != api.SessionRunning {
		t.Fatalf("the session is %s (%s) after containerd came back", got.Status, got.StatusInfo)
	}
	sc.terminate(s.ID)
	sc.wait(s.ID, api.SessionTerminated)
}
