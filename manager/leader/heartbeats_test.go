package leader

import (
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

// A report changes the leader's memory of an agent's containers as the
// next heartbeat would: a reported container replaces its entry (keeping
// the usage the last heartbeat measured, which a report does not carry),
// one reported gone leaves, a new one joins, the others stay. The list
// readers already hold is not changed under them.
func TestAReportMergesIntoTheAgentsLastHeartbeat(t *testing.T) {
	m := newAgentMemory()
	m.beat("a1", time.Unix(100, 0), &api.AgentHeartbeat{Containers: []api.ContainerReport{
		{ID: "c1", SessionID: "s1", Status: api.ContainerRunning, CPUSeconds: 5, MemoryWorkingSet: 1 << 20},
		{ID: "c2", SessionID: "s2", Status: api.ContainerRunning},
		{ID: "c3", SessionID: "s3", Status: api.ContainerRunning},
	}})
	held := m.reported("a1")
	code := 2
	m.merge("a1", []api.ContainerReport{
		{ID: "c1", SessionID: "s1", Status: api.ContainerExited, ExitCode: &code},
		{ID: "c2", SessionID: "s2", Status: api.ContainerGone, Reason: "stopped"},
		{ID: "c4", SessionID: "s4", Status: api.ContainerRunning},
		{ID: "c5", SessionID: "s5", Status: api.ContainerGone}, // never known: stays unknown
	})
	got := map[string]api.ContainerReport{}
	for _, r := range m.reported("a1") {
		got[r.ID] = r
	}
	if len(got) != 3 {
		t.Fatalf("after the report the agent holds %+v, want c1, c3 and c4", got)
	}
	if c := got["c1"]; c.Status != api.ContainerExited || c.ExitCode == nil || *c.ExitCode != 2 || c.CPUSeconds != 5 || c.MemoryWorkingSet != 1<<20 {
		t.Errorf("c1 %+v, want exited 2 with the heartbeat's usage", c)
	}
	if got["c3"].Status != api.ContainerRunning || got["c4"].Status != api.ContainerRunning {
		t.Errorf("c3 %+v, c4 %+v, want both running", got["c3"], got["c4"])
	}
	if len(held) != 3 || held[0].Status != api.ContainerRunning || held[1].ID != "c2" {
		t.Errorf("the list a reader held changed: %+v", held)
	}

	// An agent heard of only through a report (a new leadership) is
	// remembered from it; its heartbeat then replaces the list whole.
	m.merge("a2", []api.ContainerReport{{ID: "d1", SessionID: "t1", Status: api.ContainerRunning}})
	if rs := m.reported("a2"); len(rs) != 1 || rs[0].ID != "d1" {
		t.Fatalf("a2 holds %+v, want d1", rs)
	}
	m.beat("a2", time.Unix(200, 0), &api.AgentHeartbeat{Containers: []api.ContainerReport{}})
	if rs := m.reported("a2"); len(rs) != 0 {
		t.Fatalf("after a heartbeat listing nothing a2 holds %+v", rs)
	}
}
