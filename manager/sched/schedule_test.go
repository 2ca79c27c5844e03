package sched

import (
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/slots"
)

func TestFIFOTakesSessionsInCreationOrder(t *testing.T) {
	c := cluster([]*Keypair{unlimited("A"), unlimited("B")}, alive("a1", cpu(2), nil))
	// Given out of order; s1 and s2 are the oldest and fill the agent. s3
	// has had its tries, so it waits without blocking.
	pending := []Request{req("s3", "A", cpu(1), 30), req("s1", "B", cpu(1), 10), req("s2", "A", cpu(1), 20)}
	pending[0].Attempts = 3
	wantDecisions(t, schedule(t, c, pending, Options{}),
		"s1@a1", "s2@a1", "s3:no agent has cpu 1 free (largest 0)")
}

func TestDRFServesTheSmallestDominantShareFirst(t *testing.T) {
	// A already holds half the cluster's cpu (dominant share 0.5); B holds
	// a quarter of its memory (0.25). Though A's sessions are older, B's go
	// first while B's share stays under A's; then A's, until room runs out.
	heavy := unlimited("A")
	heavy.Occupied = cpu(4)
	light := unlimited("B")
	light.Occupied = slots.Slots{slots.Mem: 4 << 30}
	c := cluster([]*Keypair{heavy, light}, alive("a1", cpuMem(8, 16), cpuMem(4, 4)))
	pending := []Request{
		req("a-old", "A", cpu(1), 1), req("a-new", "A", cpu(1), 2),
		req("b-old", "B", cpu(1), 3), req("b-new", "B", cpu(1), 4), req("b-last", "B", cpu(1), 5),
	}
	for i := range pending {
		pending[i].Attempts = 5 // no blocking: the order alone is tested
	}
	wantDecisions(t, schedule(t, c, pending, Options{Order: DRF}),
		"b-old@a1", "b-new@a1", "b-last@a1", "a-old@a1", "a-new:no agent has cpu 1 free (largest 0)")
	// FIFO on the same cluster goes by age alone.
	c = cluster([]*Keypair{heavy, light}, alive("a1", cpuMem(8, 16), cpuMem(4, 4)))
	wantDecisions(t, schedule(t, c, pending, Options{Order: FIFO}),
		"a-old@a1", "a-new@a1", "b-old@a1", "b-new@a1", "b-last:no agent has cpu 1 free (largest 0)")
}

func TestDRFBreaksTiesByCreationOrder(t *testing.T) {
	c := cluster([]*Keypair{unlimited("A"), unlimited("B")}, alive("a1", cpu(8), nil))
	pending := []Request{req("b1", "B", cpu(1), 2), req("a1", "A", cpu(1), 1), req("a2", "A", cpu(1), 3)}
	// Equal shares (none): the oldest head goes first, then B (A now holds
	// more), then A again.
	wantDecisions(t, schedule(t, c, pending, Options{Order: DRF}), "a1@a1", "b1@a1", "a2@a1")
}

func TestHeadOfLineBlocksUntilItHasHadItsTries(t *testing.T) {
	agents := []*Agent{alive("a1", cpu(4), cpu(2))}
	pending := []Request{req("big", "A", cpu(4), 1), req("small", "B", cpu(1), 2)}
	kps := []*Keypair{unlimited("A"), unlimited("B")}
	for tries := range 3 {
		pending[0].Attempts = tries
		wantDecisions(t, schedule(t, cluster(kps, agents...), pending, Options{}),
			"big!no agent has cpu 4 free (largest 2)")
	}
	pending[0].Attempts = 3
	wantDecisions(t, schedule(t, cluster(kps, agents...), pending, Options{}),
		"big:no agent has cpu 4 free (largest 2)", "small@a1")
	// The number of tries is a parameter.
	pending[0].Attempts = 1
	wantDecisions(t, schedule(t, cluster(kps, agents...), pending, Options{SkipAfter: 1}),
		"big:no agent has cpu 4 free (largest 2)", "small@a1")
}

func TestKeypairLimitsNeverBlockOthers(t *testing.T) {
	three := 3
	capped := unlimited("A")
	capped.MaxConcurrent = &three
	capped.Sessions = 3
	c := cluster([]*Keypair{capped, unlimited("B")}, alive("a1", cpu(4), nil))
	pending := []Request{req("s1", "A", cpu(1), 1), req("s2", "B", cpu(1), 2)}
	wantDecisions(t, schedule(t, c, pending, Options{}), "s1:concurrency 3/3", "s2@a1")
}

func TestBatchBoundsPlacementsPerPass(t *testing.T) {
	c := cluster([]*Keypair{unlimited("A")}, alive("a1", cpu(8), nil))
	var pending []Request
	for i := range 5 {
		pending = append(pending, req(string(rune('a'+i)), "A", cpu(1), uint64(i)))
	}
	wantDecisions(t, schedule(t, c, pending, Options{Batch: 2}), "a@a1", "b@a1")
}

func TestInBatchAccountingSeesEarlierPlacements(t *testing.T) {
	two := 2
	k := unlimited("A")
	k.MaxConcurrent = &two
	k.Limits = slots.Limits{slots.CPU: 3000}
	c := cluster([]*Keypair{k}, alive("a1", cpu(8), nil))
	pending := []Request{req("s1", "A", cpu(2), 1), req("s2", "A", cpu(1), 2), req("s3", "A", cpu(1), 3), req("s4", "A", cpu(2), 4)}
	wantDecisions(t, schedule(t, c, pending, Options{}),
		"s1@a1", "s2@a1", "s3:concurrency 2/2", "s4:concurrency 2/2")
	c = cluster([]*Keypair{func() *Keypair { k := unlimited("A"); k.Limits = slots.Limits{slots.CPU: 3000}; return k }()}, alive("a1", cpu(8), nil))
	wantDecisions(t, schedule(t, c, pending, Options{}),
		"s1@a1", "s2@a1", "s3:cpu 3 + 1 > 3", "s4:cpu 3 + 2 > 3")
}

func TestParseOptions(t *testing.T) {
	for in, want := range map[string]Order{"": FIFO, "fifo": FIFO, "drf": DRF} {
		if got, err := ParseOrder(in); err != nil || got != want {
			t.Errorf("ParseOrder(%q) = %v, %v", in, got, err)
		}
	}
	for in, want := range map[string]Strategy{"": Concentrated, "concentrated": Concentrated, "dispersed": Dispersed} {
		if got, err := ParseStrategy(in); err != nil || got != want {
			t.Errorf("ParseStrategy(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseOrder("lifo"); err == nil || err.Error() != `scheduler "lifo" must be fifo or drf` {
		t.Errorf("ParseOrder(lifo): %v", err)
	}
	if _, err := ParseStrategy("random"); err == nil || err.Error() != `placement "random" must be concentrated or dispersed` {
		t.Errorf("ParseStrategy(random): %v", err)
	}
}

// Sessions created in one batched entry share its Raft index; they are
// taken in the order the handler stamped them, not by their random ids.
func TestFIFOKeepsArrivalOrderWithinOneEntry(t *testing.T) {
	c := cluster([]*Keypair{unlimited("A")}, alive("a1", cpu(1), nil))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first, second := req("zz-first", "A", cpu(1), 10), req("aa-second", "A", cpu(1), 10)
	first.CreatedAt, second.CreatedAt = base, base.Add(time.Millisecond)
	second.Attempts = 3
	wantDecisions(t, schedule(t, c, []Request{second, first}, Options{}),
		"zz-first@a1", "aa-second:no agent has cpu 1 free (largest 0)")
}
