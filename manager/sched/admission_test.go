package sched

import (
	"fmt"
	"slices"
	"testing"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// admissionAgent is an agent record as the create handler reads it.
func admissionAgent(id string, capacity slots.Slots, hosts ...string) *state.Agent {
	return &state.Agent{ID: id, Status: state.AgentAlive, Schedulable: true, Capacity: capacity, FolderHosts: hosts}
}

// withGPUInventory gives the agent n GPUs of one share each (quantum 10).
func withGPUInventory(a *state.Agent, n int) *state.Agent {
	for i := range n {
		a.GPUs = append(a.GPUs, api.GPUDevice{UUID: fmt.Sprintf("%s-g%d", a.ID, i), Index: i, Shares: 100})
	}
	a.GPUShareQuantum = 10
	a.Capacity = a.Capacity.Add(slots.Slots{slots.CUDADevice: int64(n), slots.CUDAShares: 100 * int64(n)})
	return a
}

// idleCluster is the scheduler's view of the same policy and agents with
// nothing running and every agent approved.
func idleCluster(p *state.ResourcePolicy, agents []*state.Agent) *Cluster {
	kp := &Keypair{AccessKey: "AK", Limits: p.TotalResourceSlots, MaxConcurrent: p.MaxConcurrentSessions,
		MaxContainers: p.MaxContainersPerSession, Occupied: slots.Slots{}}
	src := &fakeSource{keypairs: map[string]*Keypair{"AK": kp}}
	for _, a := range agents {
		// A disconnected agent is expected back within its grace: the
		// idle cluster is the one it is back in.
		ag := &Agent{ID: a.ID, Alive: a.Status != state.AgentLost, Schedulable: a.Schedulable, Capacity: a.Capacity,
			FolderHosts: a.FolderHosts, GPUQuantum: a.GPUShareQuantum}
		for _, g := range a.GPUs {
			ag.GPUs = append(ag.GPUs, GPU{UUID: g.UUID, Shares: g.Shares})
		}
		src.agents = append(src.agents, ag)
	}
	return NewCluster(src)
}

// The create handler's "could this ever run" is Admission, and Admission
// accepts exactly what the scheduler places on the same cluster left idle.
// The cases marked "disagreed" are those where the handler's own copy of
// the rules, before Admission, said otherwise than the scheduler: it
// accepted sessions the scheduler then left PENDING for ever.
func TestAdmissionAcceptsWhatTheSchedulerPlacesOnAnIdleCluster(t *testing.T) {
	zero := 0
	policy := func(maxContainers int, limits slots.Limits) *state.ResourcePolicy {
		return &state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "p", MaxContainersPerSession: maxContainers,
			TotalResourceSlots: limits}}
	}
	open := policy(4, slots.Limits{})
	small := admissionAgent("a1", cpuMem(2, 4))
	big := admissionAgent("a2", cpuMem(8, 32))
	lost := admissionAgent("a3", cpuMem(64, 256))
	lost.Status = state.AgentLost
	off := admissionAgent("a4", cpuMem(64, 256))
	off.Schedulable = false
	waiting := admissionAgent("a5", cpuMem(64, 256))
	waiting.AwaitingApproval = true
	away := admissionAgent("a6", cpuMem(64, 256))
	away.Status = state.AgentDisconnected
	request := func(r slots.Slots, size int, hosts ...string) Request {
		return Request{SessionID: "s", AccessKey: "AK", Slots: r, Containers: size, FolderHosts: hosts, Attempts: DefaultSkipAfter}
	}
	cases := []struct {
		name   string
		policy *state.ResourcePolicy
		agents []*state.Agent
		r      Request
		want   []Rule // Admission's reasons; none: the scheduler must place it
	}{
		{"fits", open, []*state.Agent{small}, request(cpuMem(1, 1), 1), nil},
		{"disagreed: max_containers_per_session 0 reads as 1, two containers", policy(0, nil), []*state.Agent{big},
			request(cpuMem(1, 1), 2), []Rule{RuleContainers}},
		{"max_containers_per_session 0 reads as 1, one container", policy(0, nil), []*state.Agent{big},
			request(cpuMem(1, 1), 1), nil},
		{"more containers than the policy allows", policy(2, nil), []*state.Agent{big}, request(cpuMem(1, 1), 3), []Rule{RuleContainers}},
		{"disagreed: max_concurrent_sessions 0",
			&state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "p", MaxContainersPerSession: 1, MaxConcurrentSessions: &zero}},
			[]*state.Agent{big}, request(cpuMem(1, 1), 1), []Rule{RuleConcurrency}},
		{"over the policy's totals in all", policy(4, slots.Limits{slots.CPU: 2000}), []*state.Agent{big},
			request(cpuMem(1.5, 1), 2), []Rule{RulePolicySlots}},
		{"over the policy and every agent", policy(4, slots.Limits{slots.CPU: 2000}), []*state.Agent{small},
			request(cpuMem(3, 1), 1), []Rule{RulePolicySlots, RuleAgentSlots}},
		{"over every agent", open, []*state.Agent{small, big}, request(cpuMem(16, 1), 1), []Rule{RuleAgentSlots}},
		{"every slot on some agent, none together", open,
			[]*state.Agent{admissionAgent("a1", cpuMem(8, 1)), admissionAgent("a2", cpuMem(1, 8))},
			request(cpuMem(4, 4), 1), []Rule{RuleTogether}},
		{"disagreed: the folder host only on an agent too small", open,
			[]*state.Agent{admissionAgent("a1", cpuMem(1, 1), "nfs"), big}, request(cpuMem(4, 4), 1, "nfs"), []Rule{RuleAgentSlots}},
		{"the folder host on an agent big enough", open,
			[]*state.Agent{admissionAgent("a1", cpuMem(1, 1)), admissionAgent("a2", cpuMem(8, 8), "nfs")}, request(cpuMem(4, 4), 1, "nfs"), nil},
		{"no agent has the folder host", open, []*state.Agent{big}, request(cpuMem(1, 1), 1, "nfs"), []Rule{RuleFolderHost}},
		{"no agent has the folder host nor the room", open, []*state.Agent{small}, request(cpuMem(4, 1), 1, "nfs"),
			[]Rule{RuleAgentSlots, RuleFolderHost}},
		{"no agent at all", open, nil, request(cpuMem(1, 1), 1, "nfs"), []Rule{RuleAgentSlots, RuleFolderHost}},
		{"only a lost and an unschedulable agent", open, []*state.Agent{lost, off}, request(cpuMem(1, 1), 1), []Rule{RuleAgentSlots}},
		{"an agent awaiting approval counts (the scheduler places once it is approved)", open, []*state.Agent{small, waiting},
			request(cpuMem(16, 1), 1), nil},
		{"a disconnected agent counts (the scheduler places once it is back)", open, []*state.Agent{small, away},
			request(cpuMem(16, 1), 1), nil},
		{"whole GPUs beyond every agent", open, []*state.Agent{withGPUInventory(admissionAgent("g", cpuMem(8, 8)), 2)},
			request(wholeGPUs(3), 1), []Rule{RuleAgentSlots}},
		{"two GPUs' worth of shares: both whole", open, []*state.Agent{withGPUInventory(admissionAgent("g", cpuMem(8, 8)), 2)},
			request(fgpu(200), 1), nil},
		{"a fraction beside whole GPUs", open, []*state.Agent{withGPUInventory(admissionAgent("g", cpuMem(8, 8)), 2)},
			request(fgpu(150), 1), []Rule{RuleFraction}},
		{"GPU capacity without an inventory places nothing", open,
			[]*state.Agent{admissionAgent("g", slots.Slots{slots.CPU: 8000, slots.Mem: 8 << 30, slots.CUDAShares: 200})},
			request(fgpu(50), 1), []Rule{RuleAgentSlots}},
		{"a request too large to multiply is over, not wrapped around", policy(4, slots.Limits{slots.Mem: 1 << 40}),
			[]*state.Agent{big}, request(slots.Slots{slots.CPU: 1000, slots.Mem: 1 << 62}, 4), []Rule{RulePolicySlots, RuleAgentSlots}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []Rule
			for _, f := range Admission(tc.policy, slices.Values(tc.agents), tc.r) {
				got = append(got, f.Rule)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Admission's reasons %v, want %v", got, tc.want)
			}
			ds, err := Schedule(idleCluster(tc.policy, tc.agents), []Request{tc.r}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			placed := len(ds) == 1 && ds[0].Failure == nil
			if placed != (len(got) == 0) {
				t.Errorf("Admission says %v but the scheduler on the idle cluster: %s", got, summary(ds))
			}
		})
	}
}

// The reasons carry the numbers the handler words: the limit the policy
// sets (0 read as 1), every slot over the policy and over every agent, the
// largest agent's figures, the host missing.
func TestAdmissionReasonsCarryTheirNumbers(t *testing.T) {
	p := &state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "p",
		TotalResourceSlots: slots.Limits{slots.CPU: 2000, slots.Mem: 4 << 30}}}
	agents := []*state.Agent{admissionAgent("a1", cpuMem(1.5, 2)), admissionAgent("a2", cpuMem(1, 3), "nfs")}
	r := Request{AccessKey: "AK", Slots: cpuMem(3, 5), Containers: 2, FolderHosts: []string{"scratch"}}
	fs := Admission(p, slices.Values(agents), r)
	var got []string
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%d %d/%d %v %s", f.Rule, f.Have, f.Limit, f.Over, f.Host))
	}
	want := []string{
		fmt.Sprintf("%d 2/1 [] ", RuleContainers),
		fmt.Sprintf("%d 0/0 [{cpu 0 6000 2000} {mem 0 %d %d}] ", RulePolicySlots, int64(10)<<30, int64(4)<<30),
		fmt.Sprintf("%d 0/0 [{cpu 0 3000 1500} {mem 0 %d %d}] ", RuleAgentSlots, int64(5)<<30, int64(3)<<30),
		fmt.Sprintf("%d 0/0 [] scratch", RuleFolderHost),
	}
	if !slices.Equal(got, want) {
		t.Errorf("reasons\n got  %q\n want %q", got, want)
	}
}

// With many agents the walk stops at the first that takes the container.
func TestAdmissionStopsAtTheFirstAgentThatFits(t *testing.T) {
	walked := 0
	agents := func(yield func(*state.Agent) bool) {
		for i := range 1000 {
			walked++
			if !yield(admissionAgent(fmt.Sprintf("a%04d", i), cpuMem(8, 8))) {
				return
			}
		}
	}
	p := &state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "p", MaxContainersPerSession: 1}}
	if fs := Admission(p, agents, Request{AccessKey: "AK", Slots: cpuMem(1, 1), Containers: 1}); len(fs) != 0 {
		t.Fatalf("refused: %+v", fs)
	}
	if walked != 1 {
		t.Errorf("walked %d agents, want 1", walked)
	}
}

// The most one container could get of GPUs is what allocate gives: every
// free GPU whole, or the most free on any one GPU — not whole GPUs plus a
// partly held one's rest, which no allocation hands out.
func TestLargestGPUSlotsIsWhatAllocateCanGive(t *testing.T) {
	cases := []struct {
		name            string
		gpus            []GPU
		devices, shares int64
	}{
		{"none", nil, 0, 0},
		{"untouched GPUs add up", []GPU{{Shares: 100}, {Shares: 100}}, 2, 200},
		{"one held whole, one partly, two untouched", []GPU{{Shares: 100, Held: 100}, {Shares: 100, Held: 30}, {Shares: 100}, {Shares: 100}}, 2, 200},
		{"a partly held GPU's rest when none is untouched", []GPU{{Shares: 100, Held: 90}, {Shares: 100, Held: 50}}, 0, 50},
		{"a big GPU's rest beats a small untouched one", []GPU{{Shares: 400, Held: 100}, {Shares: 100}}, 1, 300},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			devices, shares := LargestGPUSlots(tc.gpus)
			if devices != tc.devices || shares != tc.shares {
				t.Errorf("LargestGPUSlots = %d devices, %d shares; want %d, %d", devices, shares, tc.devices, tc.shares)
			}
			// allocate gives exactly that much, and no more.
			a := &agentState{}
			for i, g := range tc.gpus {
				a.gpus = append(a.gpus, gpuState{uuid: fmt.Sprint(i), shares: g.Shares, held: g.Held})
			}
			var h vec
			if shares > 0 {
				if h[vecShares] = shares; !allocates(a, h) {
					t.Errorf("allocate cannot give cuda.shares %d", shares)
				}
				if h[vecShares] = shares + 1; allocates(a, h) {
					t.Errorf("allocate gives cuda.shares %d, more than the largest", shares+1)
				}
			}
		})
	}
}

func allocates(a *agentState, h vec) bool {
	_, ok := a.allocate(h)
	return ok
}
