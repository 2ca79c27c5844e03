package fsm

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

func slice(uuid string, share int64) state.GPUSlice { return state.GPUSlice{UUID: uuid, Share: share} }
func whole(uuid string) state.GPUSlice              { return state.GPUSlice{UUID: uuid, Share: 100, Whole: true} }

// gpuPlan places session id on g1, container i holding slices[i].
func gpuPlan(id string, slices ...[]state.GPUSlice) Plan {
	p := Placement{SessionID: id}
	for _, sl := range slices {
		p.Containers = append(p.Containers, PlacedContainer{Agent: "g1", GPUs: sl})
	}
	return Plan{Version: PlanVersion, Placements: []Placement{p}}
}

// The applier records the slices the leader chose, whichever they are: it
// decides nothing. The old-format plan beside it shows what the frozen
// allocation would have picked instead.
func TestPlanRecordsTheLeadersSlicesAsTheyAre(t *testing.T) {
	f, index, base := gpuFSM(t)
	half := slots.Slots{slots.CUDAShares: 50}
	mustApply(t, f, index, gpuSession("leader", half, base))
	mustApply(t, f, index, gpuSession("old", half, base))
	mustApply(t, f, index, gpuSession("device", slots.Slots{slots.CUDADevice: 1}, base))
	// Best fit would put the first half on GPU-0 (the lower of two equal
	// GPUs); the leader chose GPU-1.
	mustApply(t, f, index, gpuPlan("leader", []state.GPUSlice{slice("GPU-1", 50)}))
	if got := slicesOf(t, f, "leader"); got != "GPU-1:50:false" {
		t.Fatalf("the leader's slices were recorded as %q", got)
	}
	if got := session(t, f, "leader").Containers[0].Slots[slots.CUDAShares]; got != 50 {
		t.Errorf("the container holds cuda.shares %d, want 50", got)
	}
	// An old-format plan: the frozen allocation picks the GPU with the
	// least free that fits, GPU-1 now.
	mustApply(t, f, index, PlanV1{Placements: []PlacementV1{{SessionID: "old", Agents: []string{"g1"}}}})
	if got := slicesOf(t, f, "old"); got != "GPU-1:50:false" {
		t.Errorf("the old-format plan's slices %q, want GPU-1:50", got)
	}
	mustApply(t, f, index, gpuPlan("device", []state.GPUSlice{whole("GPU-0")}))
	if got := held(t, f); got != "GPU-0:100 GPU-1:100" {
		t.Errorf("ledger %q", got)
	}
	checkUsage(t, f.State().Read(), "after the plans")
}

// A plan is what a leader wrote, a deposed or buggy one included: its
// slices are held to the invariants, and a placement that breaks one is
// refused with its code, the session left PENDING and the ledger as it
// was. Each case has a control: the same session with slices that keep
// the rules is placed, so the refusal is the slices' doing.
func TestPlanRefusesSlicesThatBreakAnInvariant(t *testing.T) {
	const sharesRule = " takes there (one slice on one GPU, or whole GPUs nothing holds)"
	cases := []struct {
		name    string
		request slots.Slots
		size    int
		// heldHalf: another session already holds 0.5 of GPU-0.
		heldHalf  bool
		bad, good [][]state.GPUSlice
		want      string
	}{
		{name: "a GPU the agent does not have", request: slots.Slots{slots.CUDAShares: 50},
			bad: [][]state.GPUSlice{{slice("GPU-9", 50)}}, good: [][]state.GPUSlice{{slice("GPU-1", 50)}},
			want: "agent g1 has no GPU GPU-9 (container 0)"},
		{name: "a fraction past what its GPU has free", request: slots.Slots{slots.CUDAShares: 60}, heldHalf: true,
			bad: [][]state.GPUSlice{{slice("GPU-0", 60)}}, good: [][]state.GPUSlice{{slice("GPU-1", 60)}},
			want: "agent g1: GPU GPU-0: cuda.shares 0.5 + 0.6 > 1"},
		{name: "a whole GPU something holds", request: slots.Slots{slots.CUDADevice: 1}, heldHalf: true,
			bad: [][]state.GPUSlice{{whole("GPU-0")}}, good: [][]state.GPUSlice{{whole("GPU-1")}},
			want: "agent g1: GPU GPU-0: cuda.shares 0.5 + 1 > 1"},
		{name: "a fraction beside another GPU", request: slots.Slots{slots.CUDAShares: 200},
			bad:  [][]state.GPUSlice{{whole("GPU-0"), slice("GPU-1", 100)}},
			good: [][]state.GPUSlice{{whole("GPU-0"), whole("GPU-1")}},
			want: "agent g1: the GPU slices of container 0 are not what cuda.shares 2" + sharesRule},
		{name: "less than the request rounded up to the quantum", request: slots.Slots{slots.CUDAShares: 25},
			bad: [][]state.GPUSlice{{slice("GPU-0", 25)}}, good: [][]state.GPUSlice{{slice("GPU-0", 30)}},
			want: "agent g1: the GPU slices of container 0 are not what cuda.shares 0.3" + sharesRule},
		{name: "a negative slice that would free a GPU", request: slots.Slots{slots.CUDAShares: 50}, heldHalf: true,
			bad: [][]state.GPUSlice{{slice("GPU-0", -50), slice("GPU-1", 100)}}, good: [][]state.GPUSlice{{slice("GPU-0", 50)}},
			want: "agent g1: the GPU slices of container 0 are not what cuda.shares 0.5" + sharesRule},
		{name: "the same GPU twice", request: slots.Slots{slots.CUDAShares: 100},
			bad: [][]state.GPUSlice{{slice("GPU-1", 50), slice("GPU-1", 50)}}, good: [][]state.GPUSlice{{slice("GPU-1", 100)}},
			want: "agent g1: the GPU slices of container 0 are not what cuda.shares 1" + sharesRule},
		{name: "no slices for a GPU request", request: slots.Slots{slots.CUDAShares: 50},
			bad: [][]state.GPUSlice{nil}, good: [][]state.GPUSlice{{slice("GPU-1", 50)}},
			want: "agent g1: the GPU slices of container 0 are not what cuda.shares 0.5" + sharesRule},
		{name: "a fraction for a whole GPU", request: slots.Slots{slots.CUDADevice: 1},
			bad: [][]state.GPUSlice{{slice("GPU-1", 100)}}, good: [][]state.GPUSlice{{whole("GPU-1")}},
			want: "agent g1: the GPU slices of container 0 are not what cuda.device 1" + sharesRule},
		{name: "slices a container did not ask for", request: slots.Slots{},
			bad: [][]state.GPUSlice{{slice("GPU-1", 50)}}, good: [][]state.GPUSlice{nil},
			want: "agent g1: container 0 holds GPU slices it did not ask for"},
		{name: "two containers on one GPU past its room", request: slots.Slots{slots.CUDAShares: 60}, size: 2,
			bad:  [][]state.GPUSlice{{slice("GPU-1", 60)}, {slice("GPU-1", 60)}},
			good: [][]state.GPUSlice{{slice("GPU-0", 60)}, {slice("GPU-1", 60)}},
			want: "agent g1: GPU GPU-1: cuda.shares 0.6 + 0.6 > 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, index, base := gpuFSM(t)
			if tc.heldHalf {
				mustApply(t, f, index, gpuSession("holder", slots.Slots{slots.CUDAShares: 50}, base))
				mustApply(t, f, index, gpuPlan("holder", []state.GPUSlice{slice("GPU-0", 50)}))
			}
			c := gpuSession("s", tc.request, base)
			c.Session.ClusterSize = max(1, tc.size)
			mustApply(t, f, index, c)
			before := held(t, f)
			res := mustApply(t, f, index, gpuPlan("s", tc.bad...)).Value.(*PlanResult)
			if len(res.Placed) != 0 || len(res.Refused) != 1 || res.Refused[0].Info != tc.want {
				t.Fatalf("plan result %+v\n want refused with %q", res, tc.want)
			}
			s := session(t, f, "s")
			if s.Status != api.SessionPending || s.Info() != tc.want || s.Attempts != 1 || s.StatusInfo != "" || s.Refusal == nil {
				t.Errorf("session %s %q attempts %d, recorded %q %+v", s.Status, s.Info(), s.Attempts, s.StatusInfo, s.Refusal)
			}
			if got := held(t, f); got != before {
				t.Errorf("the refused plan moved the ledger from %q to %q", before, got)
			}
			// Control.
			res = mustApply(t, f, index, gpuPlan("s", tc.good...)).Value.(*PlanResult)
			if len(res.Placed) != 1 {
				t.Fatalf("the same session with good slices: %+v", res)
			}
			if s := session(t, f, "s"); s.Refusal != nil || s.Info() != "" {
				t.Errorf("a placed session still says %q (%+v)", s.Info(), s.Refusal)
			}
			checkUsage(t, f.State().Read(), "after the control")
			checkGPUs(t, f.State().Read(), "after the control")
		})
	}
}

// Placements of one plan count against each other: the second of two
// halves-and-more on one GPU is refused.
func TestPlanCountsItsOwnEarlierPlacements(t *testing.T) {
	f, index, base := gpuFSM(t)
	for _, id := range []string{"first", "second"} {
		mustApply(t, f, index, gpuSession(id, slots.Slots{slots.CUDAShares: 60}, base))
	}
	p := gpuPlan("first", []state.GPUSlice{slice("GPU-0", 60)})
	p.Placements = append(p.Placements, gpuPlan("second", []state.GPUSlice{slice("GPU-0", 60)}).Placements...)
	res := mustApply(t, f, index, p).Value.(*PlanResult)
	want := "agent g1: GPU GPU-0: cuda.shares 0.6 + 0.6 > 1"
	if len(res.Placed) != 1 || res.Placed[0] != "first" || len(res.Refused) != 1 || res.Refused[0].Info != want {
		t.Fatalf("plan result %+v, want first placed and second refused with %q", res, want)
	}
	if got := held(t, f); got != "GPU-0:60" {
		t.Errorf("ledger %q", got)
	}
}

// A manager upgraded in place replays the log its old release wrote: the
// plan entry exactly as managers before issue 17 encoded it (type 41,
// agents only) is applied with its old meaning, the slices picked by the
// frozen allocation, a refusal reading as it did.
func TestAnOldFormatPlanEntryStillReplays(t *testing.T) {
	f, index, base := gpuFSM(t)
	mustApply(t, f, index, gpuSession("gs1", slots.Slots{slots.CUDAShares: 50}, base))
	mustApply(t, f, index, gpuSession("gs2", slots.Slots{slots.CUDAShares: 50}, base))
	mustApply(t, f, index, gpuSession("gs3", slots.Slots{slots.CUDADevice: 2}, base))
	entry := append([]byte{41}, `{"at":"2026-01-02T03:04:15Z","placements":[`+
		`{"session_id":"gs1","agents":["g1"]},{"session_id":"gs2","agents":["g1"]},{"session_id":"gs3","agents":["g1"]}],`+
		`"waits":[{"session_id":"gs3","info":"ignored: refused above"}]}`...)
	*index++
	r := f.ApplyEntry(*index, entry)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	res := r.Value.(*PlanResult)
	want := "agent g1: cuda.device 2 > 1 GPUs free"
	if len(res.Placed) != 2 || len(res.Refused) != 1 || res.Refused[0].Info != want {
		t.Fatalf("plan result %+v, want gs1 and gs2 placed, gs3 refused with %q", res, want)
	}
	for id, want := range map[string]string{"gs1": "GPU-0:50:false", "gs2": "GPU-0:50:false"} {
		if got := slicesOf(t, f, id); got != want {
			t.Errorf("%s slices %q, want %q", id, got, want)
		}
	}
	if s := session(t, f, "gs3"); s.Status != api.SessionPending || s.Info() != "ignored: refused above" {
		// The plan's waits come after its placements, as they always did.
		t.Errorf("gs3 %s %q", s.Status, s.Info())
	}
}

// An entry this manager cannot read — an unknown type without the skip
// bit, or a plan body of a newer version — stops the node with an ERROR
// line saying which entry and what to do, instead of being skipped or
// applied its own way. The controls: the skip bit, and the versions this
// manager knows, apply.
func TestEntriesThisManagerCannotReadStopItWithALogLine(t *testing.T) {
	newer, err := Encode(Plan{Version: PlanVersion + 1})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		entry []byte
		want  []string
	}{
		"unknown type":      {[]byte{0x7e, '{', '}'}, []string{"level=ERROR", "index=7", "type=126", `entry="unknown log entry type 126"`, "upgrade"}},
		"newer plan format": {newer, []string{"level=ERROR", "index=7", "type=46", fmt.Sprintf("fsm.Plan version %d (this manager knows up to %d)", PlanVersion+1, PlanVersion), "upgrade"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			f := New(slog.New(slog.NewTextHandler(&logs, nil)))
			func() {
				defer func() {
					if recover() == nil {
						t.Error("the node applied past an entry it cannot read")
					}
				}()
				f.ApplyEntry(7, tc.entry)
			}()
			for _, w := range tc.want {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("the log lacks %q:\n%s", w, logs.String())
				}
			}
		})
	}
	f := newTestFSM()
	if r := f.ApplyEntry(1, []byte{byte(IgnoreUnknown | 0x7e), '{', '}'}); r.Err != nil {
		t.Errorf("an unknown entry with the skip bit: %v", r.Err)
	}
	for i, v := range []int{0, PlanVersion} {
		e, _ := Encode(Plan{Version: v})
		if r := f.ApplyEntry(uint64(i+2), e); r.Err != nil {
			t.Errorf("a plan of version %d: %v", v, r.Err)
		}
	}
}

// Every refusal code reads as words, and those the scheduler also says
// read as it says them.
func TestEveryRefusalReads(t *testing.T) {
	for _, c := range state.RefusalCodes() {
		r := &state.Refusal{Code: c, Subject: "a1", Detail: string(slots.CUDAShares), Want: 50, Have: 20, Limit: 100,
			Over: []state.SlotOver{{Slot: slots.Mem, Have: 1 << 30, Need: 5 << 30, Limit: 4 << 30}}}
		text := r.String()
		if text == "" || strings.Contains(text, "%!") || strings.Contains(text, "refused by the plan applier") {
			t.Errorf("%s reads %q", c, text)
		}
	}
	if got := (&state.Refusal{Code: "from-a-newer-manager"}).String(); got != "refused by the plan applier (from-a-newer-manager)" {
		t.Errorf("an unknown code reads %q", got)
	}
	for want, r := range map[string]state.Refusal{
		"concurrency 2/2": {Code: state.RefusedConcurrency, Have: 2, Limit: 2},
		"agent a2: mem 1GiB + 5GiB > 4GiB": {Code: state.RefusedAgentSlots, Subject: "a2",
			Over: []state.SlotOver{{Slot: slots.Mem, Have: 1 << 30, Need: 5 << 30, Limit: 4 << 30}}},
		"cpu 2 + 1 > 2, cuda.shares 1.5 + 0.5 > 1.8": {Code: state.RefusedPolicySlots, Over: []state.SlotOver{
			{Slot: slots.CPU, Have: 2000, Need: 1000, Limit: 2000}, {Slot: slots.CUDAShares, Have: 150, Need: 50, Limit: 180}}},
	} {
		if got := r.String(); got != want {
			t.Errorf("%s reads %q, want %q", fmt.Sprint(r.Code), got, want)
		}
	}
}
