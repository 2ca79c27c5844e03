package fsm

import (
	"slices"
	"testing"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/slots"
)

// Usage replayed from any log equals what the sessions make of it, so
// recalculating finds nothing; drift put in behind the log is found,
// repaired in the same entry, and not found again.
func TestUsageRecalculateRepairsOnlyWhatDrifted(t *testing.T) {
	f := New(nil)
	log := testLog(t, 5, 200)
	applyAll(t, f, log)
	index := uint64(len(log))
	r := mustApply(t, f, &index, UsageRecalculate{}).Value.(*UsageRecalculated)
	if len(r.Drift) != 0 || r.Keypairs == 0 {
		t.Fatalf("a log-built state drifted: %+v", r)
	}
	tx := f.State().Write()
	if err := tx.SetUsage("agent/phantom", &state.Usage{Slots: slots.Slots{slots.CPU: 500}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.SetUsage("keypair/AKGHOST", &state.Usage{Sessions: 2}); err != nil {
		t.Fatal(err)
	}
	tx.Commit()

	r = mustApply(t, f, &index, UsageRecalculate{}).Value.(*UsageRecalculated)
	want := []state.UsageDrift{
		{Key: "agent/phantom", Slot: "cpu", Recorded: 500, Actual: 0},
		{Key: "keypair/AKGHOST", Slot: "sessions", Recorded: 2, Actual: 0},
	}
	if !slices.Equal(r.Drift, want) {
		t.Fatalf("drift found %+v, want %+v", r.Drift, want)
	}
	if rows, err := f.State().Read().Usages(); err != nil || slices.ContainsFunc(rows, func(u *state.Usage) bool {
		return u.Key == "agent/phantom" || u.Key == "keypair/AKGHOST"
	}) {
		t.Fatalf("phantom rows left after the repair (%v)", err)
	}
	if r := mustApply(t, f, &index, UsageRecalculate{}).Value.(*UsageRecalculated); len(r.Drift) != 0 {
		t.Fatalf("drift left after the repair: %+v", r.Drift)
	}
}
