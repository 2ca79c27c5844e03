package fsm

import (
	"testing"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// batchOf is the SessionsCreate of the creates' sessions, in order.
func batchOf(cs ...SessionCreate) SessionsCreate {
	var b SessionsCreate
	for _, c := range cs {
		b.Sessions = append(b.Sessions, c.Session)
	}
	return b
}

func TestSessionsCreateAnswersEachSessionOnItsOwn(t *testing.T) {
	f, index, base := sessionFSM(t)
	mustApply(t, f, index, newSession("old", sessionKey, api.SessionBatch, 1000, 1, base))
	r := mustApply(t, f, index, batchOf(
		newSession("b1", sessionKey, api.SessionBatch, 1000, 1, base),
		newSession("old", sessionKey, api.SessionBatch, 1000, 1, base), // refused: the id exists
		newSession("b2", "AKNOBODY", api.SessionBatch, 1000, 1, base),  // refused: no keypair
		newSession("b3", sessionKey, api.SessionInteractive, 2000, 2, base),
		newSession("b1", sessionKey, api.SessionBatch, 1000, 1, base),           // refused: made by this very entry
		newSession("b4", sessionKey, api.SessionBatch, maxSlotValue+1, 1, base), // refused: out of range
	))
	got, ok := r.Value.([]SessionCreated)
	if !ok || len(got) != 6 {
		t.Fatalf("result %T %+v: want one SessionCreated per session", r.Value, r.Value)
	}
	// 0: created; otherwise the kind of the refusal.
	wantErr := []apierr.Kind{0, apierr.Conflict, apierr.Invalid, 0, apierr.Conflict, apierr.Invalid}
	for i, w := range wantErr {
		switch {
		case w == 0 && (got[i].Err != nil || got[i].Session == nil):
			t.Errorf("session %d: %v, want created", i, got[i].Err)
		case w != 0 && (!apierr.Is(got[i].Err, w) || got[i].Session != nil):
			t.Errorf("session %d: %v (%v), want refused as kind %d", i, got[i].Err, got[i].Session, w)
		}
	}
	for _, id := range []string{"b1", "b3"} {
		s := session(t, f, id)
		if s.Status != api.SessionPending || s.CreateIndex != *index || s.Owner != "admin@x.io" {
			t.Errorf("%s is %s at index %d owned by %s: want PENDING at %d, the keypair's user", id, s.Status, s.CreateIndex, s.Owner, *index)
		}
	}
	if s, _ := f.State().Read().Session("b2"); s != nil {
		t.Errorf("a refused session was written: %+v", s)
	}
	if old := session(t, f, "old"); old.CreateIndex == *index {
		t.Error("the refused duplicate overwrote the session it collided with")
	}
}

// TestSessionsCreateEqualsOneEntryPerSession: batching changes how many
// entries carry the sessions, never what is recorded.
func TestSessionsCreateEqualsOneEntryPerSession(t *testing.T) {
	cs := []SessionCreate{}
	one, oneIndex, base := sessionFSM(t)
	many, manyIndex, _ := sessionFSM(t)
	for i, id := range []string{"x1", "x2", "x1", "x3", "x4"} {
		cs = append(cs, newSession(id, sessionKey, api.SessionBatch, int64(500*(i+1)), 1, base))
	}
	cs = append(cs, newSession("x5", "AKNOBODY", api.SessionBatch, 500, 1, base))
	mustApply(t, many, manyIndex, batchOf(cs...))
	*oneIndex++
	for _, c := range cs {
		e, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		// Every entry at the batch's index, so the records' indexes match.
		one.ApplyEntry(*oneIndex, e)
	}
	if *oneIndex != *manyIndex {
		t.Fatalf("indexes %d and %d", *oneIndex, *manyIndex)
	}
	a, b := dump(t, one), dump(t, many)
	for _, tb := range state.Tables() {
		if a[tb.Name] != b[tb.Name] {
			t.Errorf("table %s differs:\none by one %s\nbatched    %s", tb.Name, a[tb.Name], b[tb.Name])
		}
	}
}

func TestSessionsCreateOfNoSessionsWritesNothing(t *testing.T) {
	f, index, _ := sessionFSM(t)
	before := dump(t, f)
	r := mustApply(t, f, index, SessionsCreate{})
	if got := r.Value.([]SessionCreated); len(got) != 0 {
		t.Errorf("results %+v", got)
	}
	after := dump(t, f)
	for _, tb := range state.Tables() {
		if before[tb.Name] != after[tb.Name] {
			t.Errorf("table %s changed", tb.Name)
		}
	}
}
