package fsm

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/sched"
	"github.com/berth-cluster/berth/manager/state"
)

// TestOldFormatPlansDecideAsTheApplierOfTheirTimeDid holds the frozen copy
// to the code it was copied from: before issue 17, a type-41 plan was
// applied with sched's AdmitGPUs against a view of the state. On random
// states (the chaos log: GPUs, policies, agents lost and drained), a
// random placement of a random PENDING session is decided alike by both:
// placed or refused, the same slices, the same words.
//
// From here on the scheduler may change — that is the point of carrying
// its decisions in the plan — and the frozen copy must not. Should a
// deliberate change to sched make this fail, plan_v1.go is still right:
// pin the old decisions as gpus_test.go does, never edit the copy.
func TestOldFormatPlansDecideAsTheApplierOfTheirTimeDid(t *testing.T) {
	counts := map[string]int{}
	for seed := range uint64(4) {
		c := newChaos(t, seed)
		for step := range 300 {
			at := c.base.Add(time.Duration(step) * time.Second)
			apply(t, c.f, c.index, c.next(step, at))
			tx := c.f.State().Read()
			var pending []*state.Session
			if err := tx.EachPending(func(s *state.Session) bool { pending = append(pending, s); return true }); err != nil {
				t.Fatal(err)
			}
			if len(pending) == 0 {
				continue
			}
			s := pending[c.rnd.IntN(len(pending))]
			n := max(1, s.ClusterSize)
			if c.rnd.IntN(10) == 0 {
				n += c.rnd.IntN(3) - 1
			}
			agents := make([]string, n)
			for i := range agents {
				agents[i] = c.agent()
				if step%2 == 0 {
					agents[i] = "a3" // the agent with GPUs, for all
				}
			}
			wantGPUs, failure, err := sched.NewCluster(sched.StateSource(tx)).AdmitGPUs(sched.RequestOf(s), agents)
			if err != nil {
				t.Fatal(err)
			}
			// The frozen applier, in a transaction thrown away after.
			w := c.f.State().Write()
			cs := make([]PlacedContainer, n)
			for i, a := range agents {
				cs[i].Agent = a
			}
			res := &PlanResult{}
			if err := admit(w, *c.index+1, s.ID, cs, allocateV1, false, at, res); err != nil {
				t.Fatal(err)
			}
			got, _ := w.Session(s.ID)
			w.Abort()
			where := fmt.Sprintf("seed %d step %d: %s (%v × %d) on %v", seed, step, s.ID, s.Requested, s.ClusterSize, agents)
			if failure != nil {
				counts["refused"]++
				if len(res.Refused) != 1 || res.Refused[0].Info != failure.Reason {
					t.Fatalf("%s: the scheduler refused with %q, the frozen applier did %+v", where, failure.Reason, res)
				}
				continue
			}
			counts["placed"]++
			if len(res.Placed) != 1 {
				t.Fatalf("%s: the scheduler admitted it, the frozen applier did %+v", where, res)
			}
			for i, ct := range got.Containers {
				if len(ct.GPUs) > 0 {
					counts["with GPUs"]++
				}
				if !slices.Equal(ct.GPUs, wantGPUs[i]) {
					t.Fatalf("%s: container %d slices %v, the scheduler's %v", where, i, ct.GPUs, wantGPUs[i])
				}
			}
		}
	}
	t.Logf("compared: %v", counts)
	for _, what := range []string{"refused", "placed", "with GPUs"} {
		if counts[what] == 0 {
			t.Fatalf("no placement was %s: the comparison proves less than it says (%v)", what, counts)
		}
	}
}
