package sched

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/berth-cluster/berth/shared/slots"
)

// fourAgents: a1 empty, a2 a quarter full, a3 three quarters full, a4 full.
func fourAgents() []*Agent {
	return []*Agent{
		alive("a1", cpu(4), nil), alive("a2", cpu(4), cpu(1)),
		alive("a3", cpu(4), cpu(3)), alive("a4", cpu(4), cpu(4)),
	}
}

func place(t *testing.T, c *Cluster, r Request, s Strategy) string {
	t.Helper()
	agents, f, err := c.Place(r, s)
	if err != nil {
		t.Fatal(err)
	}
	if f != nil {
		return "wait: " + f.Reason
	}
	return joinIDs(agents)
}

func TestConcentratedPacksAndDispersedSpreads(t *testing.T) {
	kps := []*Keypair{unlimited("A")}
	// One core fits a1, a2 and a3: bin-packing takes the fullest (a3),
	// spreading the emptiest (a1).
	if got := place(t, cluster(kps, fourAgents()...), req("s", "A", cpu(1), 1), Concentrated); got != "a3" {
		t.Errorf("concentrated put 1 core on %s, want a3", got)
	}
	if got := place(t, cluster(kps, fourAgents()...), req("s", "A", cpu(1), 1), Dispersed); got != "a1" {
		t.Errorf("dispersed put 1 core on %s, want a1", got)
	}
	// Two cores no longer fit a3: the fullest that fits is a2.
	if got := place(t, cluster(kps, fourAgents()...), req("s", "A", cpu(2), 1), Concentrated); got != "a2" {
		t.Errorf("concentrated put 2 cores on %s, want a2", got)
	}
	// A lost or unschedulable agent is never chosen, however well it fits.
	agents := fourAgents()
	agents[2].Alive = false
	agents[1].Schedulable = false
	if got := place(t, cluster(kps, agents...), req("s", "A", cpu(1), 1), Concentrated); got != "a1" {
		t.Errorf("concentrated put 1 core on %s, want a1 (a2 unschedulable, a3 lost)", got)
	}
}

// A session's containers share one network, which is one agent's: all of
// them go to one agent, chosen as if they were one container of their sum.
func TestMultiContainerSessionsGoToOneAgent(t *testing.T) {
	kps := []*Keypair{unlimited("A")}
	agents := func() []*Agent {
		return []*Agent{alive("a1", cpu(2), nil), alive("a2", cpu(2), nil), alive("a3", cpu(4), nil)}
	}
	two := req("s", "A", cpu(1), 1)
	two.Containers = 2
	// Bin-packing: a1 and a2 would be full, a3 half (tie: smallest id).
	if got := place(t, cluster(kps, agents()...), two, Concentrated); got != "a1,a1" {
		t.Errorf("concentrated: %s, want a1,a1", got)
	}
	if got := place(t, cluster(kps, agents()...), two, Dispersed); got != "a3,a3" {
		t.Errorf("dispersed: %s, want a3,a3", got)
	}
	// Three of one core fit only a3, whatever the strategy.
	three := req("s", "A", cpu(1), 1)
	three.Containers = 3
	for _, s := range []Strategy{Concentrated, Dispersed} {
		if got := place(t, cluster(kps, agents()...), three, s); got != "a3,a3,a3" {
			t.Errorf("%s: %s, want a3,a3,a3", s, got)
		}
	}
	// Four containers of 1.5 cores would fit a1, a2 and a3 (twice) apart,
	// but no agent holds them together: the session waits, saying why.
	four := req("s", "A", cpu(1.5), 1)
	four.Containers = 4
	if got := place(t, cluster(kps, agents()...), four, Concentrated); got != "wait: no agent has room for all 4 containers together (cpu 1.5 each): a session's containers run on one agent" {
		t.Errorf("four of 1.5 cores: %s", got)
	}
	// A container that fits nowhere is said as before.
	big := req("s", "A", cpu(5), 1)
	big.Containers = 2
	if got := place(t, cluster(kps, agents()...), big, Concentrated); got != "wait: no agent has cpu 5 free for container 1 of 2 (largest 4)" {
		t.Errorf("two of 5 cores: %s", got)
	}
	// A failed multi-container placement leaves nothing behind.
	c := cluster(kps, agents()...)
	place(t, c, four, Concentrated)
	if got := place(t, c, three, Dispersed); got != "a3,a3,a3" {
		t.Errorf("after a failed placement: %s, want a3,a3,a3", got)
	}
}

func TestReasonsSayWhichPredicateFailedWithNumbers(t *testing.T) {
	three := 3
	capped := &Keypair{AccessKey: "CAP", MaxContainers: 2, MaxConcurrent: &three, Sessions: 3, Occupied: slots.Slots{}}
	quota := &Keypair{AccessKey: "QUOTA", MaxContainers: 2, Occupied: cpuMem(2, 4),
		Limits: slots.Limits{slots.CPU: 2000, slots.Mem: 4 << 30}}
	off := &Keypair{AccessKey: "OFF", Refusal: "keypair OFF is inactive"}
	kps := []*Keypair{capped, quota, off, unlimited("A")}
	big := req("s", "CAP", cpu(1), 1)
	big.Containers = 4
	pair := req("s", "A", cpu(1), 1)
	pair.Containers = 2
	cases := []struct {
		name   string
		agents []*Agent
		r      Request
		want   string
	}{
		{"containers", nil, big, "cluster_size 4 > max_containers_per_session 2"},
		{"concurrency", nil, req("s", "CAP", cpu(1), 1), "concurrency 3/3"},
		{"slot totals", nil, req("s", "QUOTA", cpu(1), 1), "cpu 2 + 1 > 2"},
		{"two slot totals", nil, req("s", "QUOTA", cpuMem(1, 1), 1), "cpu 2 + 1 > 2, mem 4GiB + 1GiB > 4GiB"},
		{"inactive", nil, req("s", "OFF", cpu(1), 1), "keypair OFF is inactive"},
		{"no keypair", nil, req("s", "GONE", cpu(1), 1), "keypair GONE does not exist"},
		{"unknown slot", nil, req("s", "A", slots.Slots{"tpu": 1}, 1), "unknown slot tpu"},
		{"no agents", nil, req("s", "A", cpu(1), 1), "no agent is alive and schedulable"},
		{"largest", []*Agent{alive("a1", cpu(2), cpu(1)), alive("a2", cpu(4), cpu(4))}, req("s", "A", cpu(1.5), 1),
			"no agent has cpu 1.5 free (largest 1)"},
		{"not together", []*Agent{alive("a1", cpuMem(2, 1), nil), alive("a2", cpuMem(1, 8), nil)}, req("s", "A", cpuMem(2, 4), 1),
			"no agent has cpu 2 and mem 4GiB free at once"},
		{"second container", []*Agent{alive("a1", cpu(1), nil)}, pair, "no agent has room for all 2 containers together (cpu 1 each): a session's containers run on one agent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := place(t, cluster(kps, tc.agents...), tc.r, Concentrated); got != "wait: "+tc.want {
				t.Errorf("got %q, want %q", got, "wait: "+tc.want)
			}
		})
	}
}

func TestAdmitVerifiesAPlacementAndSeesEarlierOnes(t *testing.T) {
	lost := alive("a9", cpu(8), nil)
	lost.Alive = false
	off := alive("a8", cpu(8), nil)
	off.Schedulable = false
	waiting := alive("a7", cpu(8), nil)
	waiting.AwaitingApproval = true
	c := cluster([]*Keypair{unlimited("A")}, alive("a1", cpu(4), cpu(1)), lost, off, waiting)
	pair := req("p", "A", cpu(2), 1)
	pair.Containers = 2
	cases := []struct {
		r      Request
		agents []string
		want   string
	}{
		{pair, []string{"a1"}, "placement names 1 agents for 2 containers"},
		{pair, []string{"a1", "a1"}, "agent a1: cpu 1 + 4 > 4"},
		{req("s", "A", cpu(1), 1), []string{"a9"}, "agent a9 is lost"},
		{req("s", "A", cpu(1), 1), []string{"a8"}, "agent a8 is not schedulable"},
		{req("s", "A", cpu(1), 1), []string{"a7"}, "agent a7 awaits approval (berth agent approve a7)"},
		{req("s", "A", cpu(1), 1), []string{"zz"}, "agent zz of container 0 does not exist"},
		{req("s1", "A", cpu(2), 1), []string{"a1"}, ""},
		// The admission just above now holds 2 of a1's 3 free cores.
		{req("s2", "A", cpu(2), 1), []string{"a1"}, "agent a1: cpu 3 + 2 > 4"},
		{req("s3", "A", cpu(1), 1), []string{"a1"}, ""},
	}
	for _, tc := range cases {
		f, err := c.Admit(tc.r, tc.agents)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if f != nil {
			got = f.Reason
		}
		if got != tc.want {
			t.Errorf("admit %s on %v: %q, want %q", tc.r.SessionID, tc.agents, got, tc.want)
		}
	}
}

// TestWhatPlaceChoosesAdmitAccepts: on random clusters, every placement
// Place makes (and commits) is accepted by Admit on a twin view, and a
// session Place turns down for want of room really fits on no agent.
func TestWhatPlaceChoosesAdmitAccepts(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var agents []*Agent
		for i := range 1 + rnd.IntN(6) {
			a := alive(fmt.Sprintf("a%d", i), cpuMem(float64(1+rnd.IntN(8)), int64(1+rnd.IntN(16))), nil)
			a.Schedulable = rnd.IntN(5) > 0
			agents = append(agents, a)
		}
		planner, verifier := cluster([]*Keypair{unlimited("A")}, agents...), cluster([]*Keypair{unlimited("A")}, agents...)
		strategy := []Strategy{Concentrated, Dispersed}[round%2]
		for i := range 30 {
			r := req(fmt.Sprintf("s%d", i), "A", cpuMem(float64(rnd.IntN(4))+0.5, int64(rnd.IntN(6))), uint64(i))
			r.Containers = 1 + rnd.IntN(3)
			chosen, f, err := planner.Place(r, strategy)
			if err != nil {
				t.Fatal(err)
			}
			if f != nil {
				if f.Kind != KindCapacity {
					t.Fatalf("round %d: %s refused for %q", round, r.SessionID, f.Reason)
				}
				if r.Containers == 1 && anyFits(verifier, r) {
					t.Fatalf("round %d: %s refused (%q) yet an agent has room", round, r.SessionID, f.Reason)
				}
				continue
			}
			if err := planner.Commit(r, chosen); err != nil {
				t.Fatal(err)
			}
			if f, err := verifier.Admit(r, chosen); err != nil || f != nil {
				t.Fatalf("round %d: Place chose %v for %s, Admit says %v %v", round, chosen, r.SessionID, f, err)
			}
		}
	}
}

func anyFits(c *Cluster, r Request) bool {
	all, _ := c.allAgents()
	return slices.ContainsFunc(all, func(a *agentState) bool {
		f, _ := c.CheckAgents(r, []string{a.id})
		return f == nil
	})
}

// An agent awaiting approval takes nothing, however well it fits; the
// wait says so and names the command that ends it. Approval moves the
// digest, so a session that waited for room tries again.
func TestPlaceSkipsAnAgentAwaitingApproval(t *testing.T) {
	kps := []*Keypair{unlimited("A")}
	waiting := alive("a1", cpu(8), nil)
	waiting.AwaitingApproval = true
	if got := place(t, cluster(kps, waiting), req("s", "A", cpu(1), 1), Concentrated); got != "wait: no agent is alive, schedulable and approved; a1 awaiting approval (berth agent approve a1)" {
		t.Errorf("only an unapproved agent: %q", got)
	}
	if got := place(t, cluster(kps, waiting, alive("a2", cpu(2), nil)), req("s", "A", cpu(1), 1), Concentrated); got != "a2" {
		t.Errorf("put 1 core on %s, want a2 (a1 awaits approval)", got)
	}
	before, err := cluster(kps, waiting).Digest()
	if err != nil {
		t.Fatal(err)
	}
	approved := *waiting
	approved.AwaitingApproval = false
	after, err := cluster(kps, &approved).Digest()
	if err != nil {
		t.Fatal(err)
	}
	if before == after {
		t.Error("approving an agent does not change the digest")
	}
	if got := place(t, cluster(kps, &approved), req("s", "A", cpu(1), 1), Concentrated); got != "a1" {
		t.Errorf("after approval: %s, want a1", got)
	}
}
