package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

const gpuKey = "AKGPU00000000000000"

// gpuAgentPut is agent g1 with two GPUs of 1.0 share and 16 GiB each,
// quantum 0.1.
func gpuAgentPut(base time.Time) AgentPut {
	return AgentPut{Agent: state.Agent{ID: "g1", Status: state.AgentAlive, Schedulable: true,
		Capacity: slots.Slots{slots.CPU: 8000, slots.Mem: 16 << 30, slots.CUDADevice: 2, slots.CUDAShares: 200},
		GPUs: []api.GPUDevice{
			{UUID: "GPU-0", Index: 0, Minor: 0, Name: "Fake", MemoryBytes: 16 << 30, Shares: 100, Fake: true},
			{UUID: "GPU-1", Index: 1, Minor: 1, Name: "Fake", MemoryBytes: 16 << 30, Shares: 100, Fake: true},
		}, GPUShareQuantum: 10, LastHeartbeatAt: base}}
}

func gpuSession(id string, r slots.Slots, at time.Time) SessionCreate {
	r = maps.Clone(r)
	r[slots.CPU], r[slots.Mem] = 500, 1<<30
	return SessionCreate{Session: state.Session{ID: id, Name: id, AccessKey: gpuKey, Image: "berth/base:latest",
		Type: api.SessionBatch, ClusterSize: 1, Requested: r, CreatedAt: at}}
}

// gpuEntries are the GPU entries of the determinism log: an agent with
// GPUs, slices that fit, a plan that would over-allocate a GPU (refused),
// the release of slices when a session ends. The plans are old-format
// (PlanV1: agents only), so the slices here are what the frozen allocation
// picks: what managers before issue 17 recorded for the same log.
func gpuEntries(base time.Time) []Command {
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	half, one := slots.Slots{slots.CUDAShares: 50}, slots.Slots{slots.CUDAShares: 100}
	q := int64(10)
	return []Command{
		PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "gpus",
			TotalResourceSlots: slots.Limits{slots.CUDAShares: 400}, MaxContainersPerSession: 2, CreatedAt: base}}},
		KeypairPut{Keypair: state.Keypair{AccessKey: gpuKey, User: "admin@x.io", IsActive: true, ResourcePolicy: "gpus", CreatedAt: base}},
		gpuAgentPut(base),
		AgentUpdate{ID: "g1", GPUShareQuantum: &q},
		gpuSession("gs1", half, at(1)),
		gpuSession("gs2", half, at(2)),
		gpuSession("gs3", one, at(3)),
		gpuSession("gs4", half, at(4)),
		gpuSession("gs5", slots.Slots{slots.CUDADevice: 1}, at(5)),
		PlanV1{At: at(10), Placements: []PlacementV1{
			{SessionID: "gs1", Agents: []string{"g1"}}, {SessionID: "gs2", Agents: []string{"g1"}},
			{SessionID: "gs3", Agents: []string{"g1"}},
			{SessionID: "gs4", Agents: []string{"g1"}}, // refused: both GPUs are full
			{SessionID: "gs5", Agents: []string{"g1"}}, // refused: no whole GPU is free
		}},
		SessionsReport{At: at(11), Agent: "g1", Reports: []ContainerReport{exitReport("gs3", 0, 0)}},
		PlanV1{At: at(12), Placements: []PlacementV1{{SessionID: "gs5", Agents: []string{"g1"}}}},
	}
}

func gpuFSM(t *testing.T) (*FSM, *uint64, time.Time) {
	t.Helper()
	f, index, base := sessionFSM(t)
	for _, c := range gpuEntries(base)[:4] {
		mustApply(t, f, index, c)
	}
	return f, index, base
}

// held renders the GPU ledger of g1 as "GPU-0:100 GPU-1:50".
func held(t *testing.T, f *FSM) string {
	t.Helper()
	u, err := f.State().Read().GPUUsage("g1")
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(u)) {
		parts = append(parts, fmt.Sprintf("%s:%d", id, u[id]))
	}
	return strings.Join(parts, " ")
}

func slicesOf(t *testing.T, f *FSM, id string) string {
	t.Helper()
	var parts []string
	for _, c := range session(t, f, id).Containers {
		for _, g := range c.GPUs {
			parts = append(parts, fmt.Sprintf("%s:%d:%v", g.UUID, g.Share, g.Whole))
		}
	}
	return strings.Join(parts, ",")
}

func TestPlanRefusesAPlanThatOverAllocatesAGPU(t *testing.T) {
	f, index, base := gpuFSM(t)
	for _, c := range gpuEntries(base)[4:9] {
		mustApply(t, f, index, c)
	}
	r := mustApply(t, f, index, gpuEntries(base)[9])
	res := r.Value.(*PlanResult)
	if want := []string{"gs1", "gs2", "gs3"}; !slices.Equal(res.Placed, want) {
		t.Errorf("placed %v, want %v", res.Placed, want)
	}
	var refused []string
	for _, w := range res.Refused {
		refused = append(refused, w.SessionID+": "+w.Info)
	}
	want := []string{
		"gs4: agent g1: cuda.shares 2 + 0.5 > 2",
		// The agent's cuda.device has room (slices are cuda.shares); its
		// GPUs have none.
		"gs5: agent g1: cuda.device 1 > 0 GPUs free",
	}
	if !slices.Equal(refused, want) {
		t.Errorf("refused:\n got  %q\n want %q", refused, want)
	}
	// The halves share GPU-0; the whole share went to GPU-1.
	for id, want := range map[string]string{"gs1": "GPU-0:50:false", "gs2": "GPU-0:50:false", "gs3": "GPU-1:100:false", "gs4": ""} {
		if got := slicesOf(t, f, id); got != want {
			t.Errorf("%s slices %q, want %q", id, got, want)
		}
	}
	if s := session(t, f, "gs4"); s.Status != api.SessionPending || s.Attempts != 1 {
		t.Errorf("gs4 is %s after %d attempts, want PENDING after 1", s.Status, s.Attempts)
	}
	if got := held(t, f); got != "GPU-0:100 GPU-1:100" {
		t.Errorf("ledger %q", got)
	}
	// gs3 ends: its GPU is free again, and whole.
	mustApply(t, f, index, gpuEntries(base)[10])
	if got := held(t, f); got != "GPU-0:100" {
		t.Errorf("ledger after gs3 ended %q", got)
	}
	mustApply(t, f, index, gpuEntries(base)[11])
	if got := slicesOf(t, f, "gs5"); got != "GPU-1:100:true" {
		t.Errorf("gs5 slices %q", got)
	}
	checkUsage(t, f.State().Read(), "after the GPU plans")
}

func TestPlacedSharesAreRoundedToTheAgentsQuantum(t *testing.T) {
	f, index, base := gpuFSM(t)
	mustApply(t, f, index, gpuSession("q", slots.Slots{slots.CUDAShares: 25}, base))
	mustApply(t, f, index, PlanV1{At: base, Placements: []PlacementV1{{SessionID: "q", Agents: []string{"g1"}}}})
	s := session(t, f, "q")
	if got := slicesOf(t, f, "q"); got != "GPU-0:30:false" {
		t.Errorf("slices %q, want GPU-0:30", got)
	}
	if got := s.Containers[0].Slots[slots.CUDAShares]; got != 30 {
		t.Errorf("the container holds cuda.shares %d, want 30", got)
	}
	if got := s.Requested[slots.CUDAShares]; got != 25 {
		t.Errorf("requested %d, want 25 as asked", got)
	}
	if got, _ := f.State().Read().OccupiedByKeypair(gpuKey); got[slots.CUDAShares] != 30 {
		t.Errorf("keypair holds %v", got)
	}
}

func TestAgentUpdateReplacesTheGPUInventory(t *testing.T) {
	f, index, _ := gpuFSM(t)
	one := []api.GPUDevice{{UUID: "GPU-9", Index: 0, Shares: 100}}
	q := int64(25)
	mustApply(t, f, index, AgentUpdate{ID: "g1", GPUs: &one, GPUShareQuantum: &q})
	a := agent(t, f, "g1")
	if len(a.GPUs) != 1 || a.GPUs[0].UUID != "GPU-9" || a.GPUShareQuantum != 25 {
		t.Errorf("agent GPUs %+v quantum %d", a.GPUs, a.GPUShareQuantum)
	}
	// An update without GPUs leaves them.
	addr := "10.0.0.9:6001"
	mustApply(t, f, index, AgentUpdate{ID: "g1", Address: &addr})
	if a := agent(t, f, "g1"); len(a.GPUs) != 1 || a.GPUShareQuantum != 25 {
		t.Errorf("an address update changed the GPUs: %+v %d", a.GPUs, a.GPUShareQuantum)
	}
}
