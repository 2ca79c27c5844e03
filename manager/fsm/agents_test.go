package fsm

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// agentEntries are the agent entries of the determinism log: a registration,
// partial updates, a loss and a return, and entries the FSM refuses.
func agentEntries(base time.Time) []Command {
	later := base.Add(time.Minute)
	earlier := base.Add(-time.Minute)
	addr, lost, alive, no := "10.0.0.2:6001", state.AgentLost, state.AgentAlive, false
	bogus := "GONE"
	capacity := slots.Slots{slots.CPU: 4000, slots.Mem: 8 << 30}
	images := []api.Image{{Name: "berth/base:latest", Digest: "sha256:1", Size: 1 << 20}}
	node := api.NodeInfo{Hostname: "n2", Arch: "amd64", CPUs: 5}
	return []Command{
		AgentPut{Agent: state.Agent{ID: "a2", Secret: "s2", Address: "10.0.0.1:6001", Status: alive, Schedulable: true,
			Capacity: capacity, Images: images, Node: node, Version: "1", LastHeartbeatAt: base}},
		AgentPut{Agent: state.Agent{ID: "a2", Secret: "other"}}, // refused: the id is taken
		AgentUpdate{ID: "a2", Address: &addr, Schedulable: &no, LastHeartbeatAt: &later},
		AgentUpdate{ID: "a2", LastHeartbeatAt: &earlier}, // the clock does not go back
		AgentUpdate{ID: "nobody", Status: &lost},         // refused: no agent
		AgentUpdate{ID: "a2", Status: &bogus},            // refused: no such status
		AgentsLost{At: later, Agents: []LostAgent{{ID: "a1", LastSeen: base}, {ID: "a2", LastSeen: base}, {ID: "ghost"}}},
		AgentUpdate{ID: "a1", Status: &alive, LastHeartbeatAt: &later},
	}
}

func agent(t *testing.T, f *FSM, id string) *state.Agent {
	t.Helper()
	a, err := f.State().Read().Agent(id)
	if err != nil || a == nil {
		t.Fatalf("agent %s: %v, %v", id, a, err)
	}
	return a
}

func TestAgentUpdateChangesOnlyWhatItCarries(t *testing.T) {
	f := newTestFSM()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var index uint64
	for _, c := range agentEntries(base)[:4] {
		apply(t, f, &index, c)
	}
	a := agent(t, f, "a2")
	if a.Secret != "s2" || a.Version != "1" || a.Node.Hostname != "n2" || len(a.Images) != 1 || a.Capacity[slots.CPU] != 4000 {
		t.Errorf("fields the updates did not carry changed: %+v", a)
	}
	if a.Address != "10.0.0.2:6001" || a.Schedulable {
		t.Errorf("address %s schedulable %v, want the update's", a.Address, a.Schedulable)
	}
	if !a.LastHeartbeatAt.Equal(base.Add(time.Minute)) {
		t.Errorf("last heartbeat %s: an older time must not replace a newer one", a.LastHeartbeatAt)
	}
	if a.CreateIndex != 1 || a.ModifyIndex != 4 {
		t.Errorf("create/modify index %d/%d, want 1/4", a.CreateIndex, a.ModifyIndex)
	}
	if r := apply(t, f, &index, AgentUpdate{ID: "nobody"}); !apierr.Is(r.Err, apierr.NotFound) {
		t.Errorf("update of an unknown agent: %v, want not found", r.Err)
	}
	if r := apply(t, f, &index, AgentPut{Agent: state.Agent{ID: "a2", Secret: "thief"}}); !apierr.Is(r.Err, apierr.Conflict) {
		t.Errorf("registration reusing a taken id: %v, want conflict", r.Err)
	}
}

func TestAgentsLostSkipsAgentsThatCameBack(t *testing.T) {
	f := newTestFSM()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var index uint64
	for _, id := range []string{"quiet", "back", "lost"} {
		apply(t, f, &index, AgentPut{Agent: state.Agent{ID: id, Secret: id, Status: state.AgentAlive, LastHeartbeatAt: base}})
	}
	apply(t, f, &index, AgentUpdate{ID: "lost", Status: ptr(state.AgentLost)})
	// "back" heartbeated (and the log recorded it) after the leader judged
	// by base: it stays ALIVE.
	apply(t, f, &index, AgentUpdate{ID: "back", LastHeartbeatAt: ptr(base.Add(time.Second))})
	r := apply(t, f, &index, AgentsLost{At: base.Add(time.Minute), Agents: []LostAgent{
		{ID: "quiet", LastSeen: base}, {ID: "back", LastSeen: base}, {ID: "lost", LastSeen: base}, {ID: "ghost", LastSeen: base}}})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := r.Value.([]string); !slices.Equal(got, []string{"quiet"}) {
		t.Errorf("marked %v, want only quiet", got)
	}
	for id, want := range map[string]string{"quiet": state.AgentLost, "back": state.AgentAlive, "lost": state.AgentLost} {
		if got := agent(t, f, id).Status; got != want {
			t.Errorf("%s is %s, want %s", id, got, want)
		}
	}
	if agent(t, f, "lost").ModifyIndex != 4 {
		t.Error("an agent already LOST must not be written again")
	}
}

func ptr[T any](v T) *T { return &v }

func TestWaitIndexWakesOnApplyAndEndsWithTheContext(t *testing.T) {
	f := newTestFSM()
	f.Apply(&raft.Log{Index: 3, Type: raft.LogNoop})
	if idx, err := f.WaitIndex(context.Background(), 2); idx != 3 || err != nil {
		t.Fatalf("index already past: got %d, %v", idx, err)
	}
	got := make(chan uint64)
	go func() {
		idx, _ := f.WaitIndex(context.Background(), 3)
		got <- idx
	}()
	// The waiter may or may not be parked yet: either way it must see 4.
	e, _ := Encode(AgentPut{Agent: state.Agent{ID: "a"}})
	f.Apply(&raft.Log{Index: 4, Type: raft.LogCommand, Data: e})
	select {
	case idx := <-got:
		if idx != 4 {
			t.Fatalf("woke with index %d, want 4", idx)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter was not woken by the apply")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if idx, err := f.WaitIndex(ctx, 4); idx != 4 || err == nil {
		t.Fatalf("nothing applied: got %d, %v; want 4 and the context's error", idx, err)
	}
}

func BenchmarkApplyWithoutWaiters(b *testing.B) {
	f := newTestFSM()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogNoop})
	}
}

// Once an agent has said it is simulated, no later entry makes it real: a
// put of the same agent without the mark and an update saying false both
// leave it, while an update saying true marks a real agent.
func TestTheSimulatedMarkIsNeverCleared(t *testing.T) {
	f := newTestFSM()
	var index uint64
	sim := state.Agent{ID: "sim", Secret: "s", Status: state.AgentAlive, Simulated: true}
	apply(t, f, &index, AgentPut{Agent: sim})
	again := sim
	again.Simulated = false
	apply(t, f, &index, AgentPut{Agent: again})
	apply(t, f, &index, AgentUpdate{ID: "sim", Simulated: false})
	if !agent(t, f, "sim").Simulated {
		t.Fatal("the simulated mark was cleared")
	}
	apply(t, f, &index, AgentPut{Agent: state.Agent{ID: "real", Secret: "r", Status: state.AgentAlive}})
	if agent(t, f, "real").Simulated {
		t.Fatal("a real agent is marked simulated")
	}
	apply(t, f, &index, AgentUpdate{ID: "real", Simulated: true})
	if !agent(t, f, "real").Simulated {
		t.Fatal("an update saying simulated did not mark the agent")
	}
}
