package sched

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/slots"
)

// gpuAgent has plenty of cpu and memory and len(held) GPUs of 1.0 share
// each ("<id>-g0", …), held[i] of GPU i already held by slices.
func gpuAgent(id string, quantum int64, held ...int64) *Agent {
	a := alive(id, slots.Slots{slots.CPU: 64000, slots.Mem: 256 << 30,
		slots.CUDADevice: int64(len(held)), slots.CUDAShares: 100 * int64(len(held))}, slots.Slots{})
	a.GPUQuantum = quantum
	for i, h := range held {
		a.GPUs = append(a.GPUs, GPU{UUID: fmt.Sprintf("%s-g%d", id, i), Shares: 100, Held: h})
		if h > 0 {
			a.Occupied[slots.CUDAShares] += h
		}
	}
	return a
}

func fgpu(shares int64) slots.Slots {
	return slots.Slots{slots.CPU: 1000, slots.Mem: 1 << 30, slots.CUDAShares: shares}
}

func wholeGPUs(n int64) slots.Slots {
	return slots.Slots{slots.CPU: 1000, slots.Mem: 1 << 30, slots.CUDADevice: n}
}

// renderSlices shows containers' slices as "a1-g0:30" (share) or
// "a1-g0:whole", containers separated by " | ".
func renderSlices(gpus [][]state.GPUSlice) string {
	var cs []string
	for _, c := range gpus {
		var parts []string
		for _, g := range c {
			if g.Whole {
				parts = append(parts, g.UUID+":whole")
			} else {
				parts = append(parts, fmt.Sprintf("%s:%d", g.UUID, g.Share))
			}
		}
		cs = append(cs, strings.Join(parts, ","))
	}
	return strings.Join(cs, " | ")
}

// admitGPUs admits r on agents and renders the slices, or the refusal.
func admitGPUs(t *testing.T, c *Cluster, r Request, agents ...string) string {
	t.Helper()
	gpus, f, err := c.AdmitGPUs(r, agents)
	if err != nil {
		t.Fatal(err)
	}
	if f != nil {
		return "refused: " + f.Reason
	}
	return renderSlices(gpus)
}

func TestGPUSlicesAreRoundedBestFitAndSplitOnlyBeyondOneGPU(t *testing.T) {
	cases := []struct {
		name    string
		quantum int64
		held    []int64
		ask     slots.Slots
		want    string
	}{
		{"rounded up to the quantum", 10, []int64{0, 0}, fgpu(25), "a1-g0:30"},
		{"a coarser quantum", 25, []int64{0, 0}, fgpu(30), "a1-g0:50"},
		{"no quantum reported: hundredths", 0, []int64{0, 0}, fgpu(25), "a1-g0:25"},
		{"a partly held GPU fills up before an untouched one", 10, []int64{0, 50}, fgpu(50), "a1-g1:50"},
		{"best fit: the least free that still holds it", 10, []int64{50, 80}, fgpu(20), "a1-g1:20"},
		{"the tighter GPU is too small: the next", 10, []int64{50, 80}, fgpu(30), "a1-g0:30"},
		{"one whole GPU's worth goes on an untouched GPU", 10, []int64{50, 0}, fgpu(100), "a1-g1:100"},
		{"at most one GPU's worth is never split", 10, []int64{50, 50}, fgpu(100),
			"refused: agent a1: no GPU slices for cuda.shares 1 (largest 0.5)"},
		{"beyond one GPU: whole GPUs only", 10, []int64{0, 0, 0}, fgpu(200), "a1-g0:whole,a1-g1:whole"},
		{"beyond one GPU they must be untouched", 10, []int64{0, 10, 0}, fgpu(200), "a1-g0:whole,a1-g2:whole"},
		{"beyond one GPU, a fraction left over is refused", 10, []int64{0, 0}, fgpu(150),
			"refused: agent a1: cuda.shares 1.5 is more than one GPU (1) but not a whole number of GPUs: a fraction runs under one GPU's MPS daemon and cannot be held beside other GPUs"},
		{"beyond one GPU with too few untouched", 10, []int64{10, 10, 0}, fgpu(200),
			"refused: agent a1: no GPU slices for cuda.shares 2 (largest 1)"},
		{"a whole GPU is one nothing holds", 10, []int64{10, 0}, wholeGPUs(1), "a1-g1:whole"},
		{"whole GPUs in index order", 10, []int64{0, 0, 0}, wholeGPUs(2), "a1-g0:whole,a1-g1:whole"},
		{"a partly held GPU is no whole GPU", 10, []int64{10, 0}, wholeGPUs(2), "refused: agent a1: cuda.device 2 > 1 GPUs free"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster([]*Keypair{unlimited("A")}, gpuAgent("a1", tc.quantum, tc.held...))
			if got := admitGPUs(t, c, req("s", "A", tc.ask, 1), "a1"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHalvesShareOneGPUSoAWholeOneStillFits(t *testing.T) {
	c := cluster([]*Keypair{unlimited("A")}, gpuAgent("a1", 10, 0, 0))
	// Had the two halves gone to different GPUs, 1.0 would find no room.
	got := []string{
		admitGPUs(t, c, req("h1", "A", fgpu(50), 1), "a1"),
		admitGPUs(t, c, req("h2", "A", fgpu(50), 2), "a1"),
		admitGPUs(t, c, req("one", "A", fgpu(100), 3), "a1"),
	}
	if want := []string{"a1-g0:50", "a1-g0:50", "a1-g1:100"}; !slices.Equal(got, want) {
		t.Errorf("slices %q, want %q", got, want)
	}
	// The scheduler plans the same way.
	c = cluster([]*Keypair{unlimited("A")}, gpuAgent("a1", 10, 0, 0))
	pending := []Request{req("h1", "A", fgpu(50), 1), req("h2", "A", fgpu(50), 2), req("one", "A", fgpu(100), 3)}
	wantDecisions(t, schedule(t, c, pending, Options{}), "h1@a1", "h2@a1", "one@a1")
}

func TestAgentsAreChosenSoNoGPUIsFragmentedNeedlessly(t *testing.T) {
	for _, strategy := range []Strategy{Concentrated, Dispersed} {
		t.Run(strategy.String(), func(t *testing.T) {
			// Two agents of one GPU each; b1 has more cpu free, so by
			// fullness alone dispersed would spread the halves over both
			// GPUs and the whole one would find no room.
			a1, b1 := gpuAgent("a1", 10, 0), gpuAgent("b1", 10, 0)
			a1.Occupied[slots.CPU] = 32000
			c := cluster([]*Keypair{unlimited("A")}, a1, b1)
			pending := []Request{req("h1", "A", fgpu(50), 1), req("h2", "A", fgpu(50), 2), req("one", "A", fgpu(100), 3)}
			got := schedule(t, c, pending, Options{Strategy: strategy})
			if got[2] != "one@a1" && got[2] != "one@b1" || got[0][3:] != got[1][3:] {
				t.Errorf("decisions %q: the halves must share an agent and the whole one fit", got)
			}
		})
	}
	// A small slice goes where a GPU is already partly held rather than
	// breaking an untouched one, whatever the strategy says.
	c := cluster([]*Keypair{unlimited("A")}, gpuAgent("a1", 10, 0, 0), gpuAgent("b1", 10, 0, 40))
	if got := place(t, c, req("s", "A", fgpu(50), 1), Dispersed); got != "b1" {
		t.Errorf("0.5 went to %s, want b1", got)
	}
}

func TestFiveHalvesOnTwoGPUsPlaceFourAndOneWaits(t *testing.T) {
	c := cluster([]*Keypair{unlimited("A")}, gpuAgent("a1", 10, 0, 0))
	var pending []Request
	for i := range 5 {
		pending = append(pending, req(fmt.Sprintf("h%d", i), "A", fgpu(50), uint64(i)))
	}
	wantDecisions(t, schedule(t, c, pending, Options{}),
		"h0@a1", "h1@a1", "h2@a1", "h3@a1", "h4!no agent has cuda.shares 0.5 free (largest 0)")
}

func TestWholeGPUsAndSlicesExcludeEachOther(t *testing.T) {
	kps := []*Keypair{unlimited("A")}
	c := cluster(kps, gpuAgent("a1", 10, 0, 0))
	got := []string{
		admitGPUs(t, c, req("whole", "A", wholeGPUs(1), 1), "a1"),
		admitGPUs(t, c, req("half", "A", fgpu(50), 2), "a1"),
		admitGPUs(t, c, req("whole2", "A", wholeGPUs(1), 3), "a1"),
		admitGPUs(t, c, req("more", "A", fgpu(60), 4), "a1"),
		admitGPUs(t, c, req("rest", "A", fgpu(50), 5), "a1"),
	}
	want := []string{"a1-g0:whole", "a1-g1:50",
		"refused: agent a1: cuda.device 1 > 0 GPUs free",
		"refused: agent a1: no GPU slices for cuda.shares 0.6 (largest 0.5)",
		"a1-g1:50"}
	if !slices.Equal(got, want) {
		t.Errorf("admissions:\n got  %q\n want %q", got, want)
	}
	// The scheduler says why a whole GPU waits: none is free anywhere.
	pending := []Request{req("w", "A", wholeGPUs(1), 9)}
	wantDecisions(t, schedule(t, c, pending, Options{}), "w!no agent has cuda.device 1 free (largest 0)")
}

func TestGPURequestsNeedAnAgentWithGPUs(t *testing.T) {
	kps := []*Keypair{unlimited("A")}
	// A capacity that claims GPUs without an inventory places nothing on
	// them: the agent could not say which device to give.
	claims := alive("a0", slots.Slots{slots.CPU: 8000, slots.Mem: 8 << 30, slots.CUDAShares: 200}, nil)
	c := cluster(kps, claims, gpuAgent("a1", 10, 100, 0))
	if got := place(t, c, req("s", "A", fgpu(50), 1), Concentrated); got != "a1" {
		t.Errorf("0.5 went to %s, want a1", got)
	}
	if got := admitGPUs(t, c, req("s", "A", fgpu(50), 1), "a0"); got != "refused: agent a0: it has no GPUs" {
		t.Errorf("admit on a0: %s", got)
	}
	// A CPU-only request never touches the GPUs.
	if got := admitGPUs(t, c, req("c", "A", cpu(1), 2), "a1"); got != "" {
		t.Errorf("cpu-only slices %q", got)
	}
}

func TestContainersOfOneSessionSeeEachOthersSlices(t *testing.T) {
	c := cluster([]*Keypair{unlimited("A")}, gpuAgent("a1", 10, 0, 0))
	two := req("two", "A", fgpu(60), 1)
	two.Containers = 2
	if got := place(t, c, two, Concentrated); got != "a1,a1" {
		t.Fatalf("two containers of 0.6 went to %s, want a1,a1", got)
	}
	if got := admitGPUs(t, c, two, "a1", "a1"); got != "a1-g0:60 | a1-g1:60" {
		t.Errorf("slices %q", got)
	}
	// With one GPU given whole, the second container of 0.6 finds only
	// what the first left of the other GPU, though the agent's cuda.shares
	// (whole GPUs are cuda.device) would have room.
	c = cluster([]*Keypair{unlimited("A")}, gpuAgent("a1", 10, 0, 0))
	if got := admitGPUs(t, c, req("whole", "A", wholeGPUs(1), 1), "a1"); got != "a1-g0:whole" {
		t.Fatalf("whole GPU: %s", got)
	}
	two.CreateIndex = 2
	if got := admitGPUs(t, c, two, "a1", "a1"); got != "refused: agent a1: no GPU slices for cuda.shares 0.6 (largest 0.4)" {
		t.Errorf("two containers of 0.6 on one free GPU: %s", got)
	}
	if got := place(t, c, two, Concentrated); got != "wait: no agent has room for all 2 containers together (cpu 1 and mem 1GiB and cuda.shares 0.6 each): a session's containers run on one agent" {
		t.Errorf("place: %s", got)
	}
}

func TestKeypairsHoldTheRoundedShares(t *testing.T) {
	k := unlimited("A")
	k.Limits = slots.Limits{slots.CUDAShares: 100}
	c := cluster([]*Keypair{k}, gpuAgent("a1", 10, 0, 0))
	// 0.25 holds 0.3 on an agent of quantum 0.1: three of them hold 0.9,
	// and a fourth would pass the limit of 1.
	var pending []Request
	for i := range 4 {
		r := req(fmt.Sprintf("q%d", i), "A", fgpu(25), uint64(i))
		r.Attempts = 5
		pending = append(pending, r)
	}
	wantDecisions(t, schedule(t, c, pending, Options{}),
		"q0@a1", "q1@a1", "q2@a1", "q3:cuda.shares 0.9 + 0.25 > 1")
}

// TestWhatPlaceChoosesAdmitAcceptsWithGPUs: on random GPU clusters, every
// placement Place makes is accepted by Admit on a twin view with the very
// same slices, and a single container Place turns down fits no agent.
func TestWhatPlaceChoosesAdmitAcceptsWithGPUs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		var agents []*Agent
		for i := range 1 + rnd.IntN(4) {
			held := make([]int64, 1+rnd.IntN(4))
			for j := range held {
				held[j] = []int64{0, 0, 30, 50, 100}[rnd.IntN(5)]
			}
			agents = append(agents, gpuAgent(fmt.Sprintf("a%d", i), []int64{1, 10, 25}[rnd.IntN(3)], held...))
		}
		planner, verifier := cluster([]*Keypair{unlimited("A")}, agents...), cluster([]*Keypair{unlimited("A")}, agents...)
		strategy := []Strategy{Concentrated, Dispersed}[round%2]
		for i := range 20 {
			ask := fgpu(1 + rnd.Int64N(250))
			if rnd.IntN(3) == 0 {
				ask = wholeGPUs(1 + rnd.Int64N(2))
			}
			r := req(fmt.Sprintf("s%d", i), "A", ask, uint64(i))
			r.Containers = 1 + rnd.IntN(2)
			chosen, f, err := planner.Place(r, strategy)
			if err != nil {
				t.Fatal(err)
			}
			if f != nil {
				if r.Containers == 1 && anyFits(verifier, r) {
					t.Fatalf("round %d: %s refused (%q) yet an agent has room", round, r.SessionID, f.Reason)
				}
				continue
			}
			planned, err := planner.commit(r, chosen)
			if err != nil {
				t.Fatal(err)
			}
			verified, f, err := verifier.AdmitGPUs(r, chosen)
			if err != nil || f != nil {
				t.Fatalf("round %d: Place chose %v for %s, Admit says %v %v", round, chosen, r.SessionID, f, err)
			}
			if renderSlices(planned) != renderSlices(verified) {
				t.Fatalf("round %d: planned %q, verified %q", round, renderSlices(planned), renderSlices(verified))
			}
			for _, a := range verifier.all {
				for _, g := range a.gpus {
					if g.held > g.shares {
						t.Fatalf("round %d: GPU %s holds %d of %d", round, g.uuid, g.held, g.shares)
					}
				}
			}
		}
	}
}
