package fsm

import (
	"bytes"
	"context"
	"io"
	"maps"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/state"
)

// marks reads the desired-state mark of each agent.
func marks(t *testing.T, f *FSM, agents ...string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, a := range agents {
		i, _, err := f.State().Read().DesiredIndex(a)
		if err != nil {
			t.Fatal(err)
		}
		out[a] = i
	}
	return out
}

// An agent's blocking desired-state query waits on its own mark: an entry
// moves the marks of the agents whose desired state it changes and no
// other, so an agent wakes for its own placements and stops, not for every
// create and every other agent's news. Each step names the agents whose
// mark must move to the entry's index; the rest must stay.
func TestDesiredMarksMoveOnlyForTheAgentsAnEntryConcerns(t *testing.T) {
	f, index, base := sessionFSM(t)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	steps := []struct {
		name  string
		entry Command
		moves []string
	}{
		{"a create places nothing", newSession("s1", sessionKey, "batch", 1000, 1, at(1)), nil},
		{"a second create", newSession("s2", sessionKey, "batch", 1000, 1, at(2)), nil},
		{"a plan moves the agents it places on", Plan{At: at(3), Placements: []Placement{{SessionID: "s1", Containers: on("a1")}}}, []string{"a1"}},
		{"the agent's report moves its own mark", SessionsReport{At: at(4), Agent: "a1", Reports: []ContainerReport{{SessionID: "s1", Index: 0, Status: "running"}}}, []string{"a1"}},
		{"a rogue agent's report moves nothing", SessionsReport{At: at(5), Agent: "a2", Reports: []ContainerReport{exitReport("s1", 0, 1)}}, nil},
		{"a termination moves the agent that must stop it", SessionTerminate{SessionID: "s1", At: at(6), Reason: "user-request"}, []string{"a1"}},
		{"a plan on the other agent", Plan{At: at(7), Placements: []Placement{{SessionID: "s2", Containers: on("a2")}}}, []string{"a2"}},
		{"a policy every desired state reads moves everyone", PolicyUpdate{Name: "sessions", MaxContainersPerSession: ptr(2)}, []string{"a1", "a2"}},
	}
	for _, st := range steps {
		before := marks(t, f, "a1", "a2")
		r := apply(t, f, index, st.entry)
		if r.Err != nil && len(st.moves) > 0 {
			t.Fatalf("%s: %v", st.name, r.Err)
		}
		after := marks(t, f, "a1", "a2")
		want := maps.Clone(before)
		for _, a := range st.moves {
			want[a] = *index
		}
		for _, a := range []string{"a1", "a2"} {
			if after[a] != want[a] {
				t.Errorf("%s: %s's mark is %d, want %d (before %d, entry %d)", st.name, a, after[a], want[a], before[a], *index)
			}
		}
	}
}

// A query waiting on an agent's mark wakes when a plan places on that
// agent, and not when another agent is placed on.
func TestAnAgentsDesiredWatchFiresOnlyForItsOwnChanges(t *testing.T) {
	f, index, base := sessionFSM(t)
	mustApply(t, f, index, newSession("s1", sessionKey, "batch", 1000, 1, base))
	_, w1, err := f.State().Read().DesiredIndex("a1")
	if err != nil {
		t.Fatal(err)
	}
	_, w2, err := f.State().Read().DesiredIndex("a2")
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, f, index, Plan{At: base, Placements: []Placement{{SessionID: "s1", Containers: on("a2")}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w2.Wait(ctx); err != nil {
		t.Fatalf("a2's watch did not fire for a plan on a2: %v", err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if err := w1.Wait(short); err == nil {
		t.Fatal("a1's watch fired for a plan on a2")
	}
}

// The marks are derived, not snapshotted: a restore rebuilds the same
// marks from the records, and wakes every query watching the old state.
func TestARestoreRebuildsTheDesiredMarksAndWakesTheirWatchers(t *testing.T) {
	f := newTestFSM()
	applyAll(t, f, testLog(t, 21, 50))
	var agents []string
	all, err := f.State().Read().All("agents")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range all {
		agents = append(agents, o.(*state.Agent).ID)
	}
	if len(agents) == 0 {
		t.Fatal("the test log has no agents: the test proves nothing")
	}
	want := marks(t, f, agents...)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &bufferSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	restored := newTestFSM()
	applyAll(t, restored, testLog(t, 22, 10))
	_, w, err := restored.State().Read().DesiredIndex(agents[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := restored.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Wait(ctx); err != nil {
		t.Fatalf("a query watching the replaced state was not woken: %v", err)
	}
	got := marks(t, restored, agents...)
	for _, a := range agents {
		if got[a] != want[a] || want[a] == 0 {
			t.Errorf("agent %s: mark %d after the restore, %d before", a, got[a], want[a])
		}
	}
}
