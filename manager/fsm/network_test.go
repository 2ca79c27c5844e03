package fsm

import (
	"testing"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// Invariant 9: a plan of version 2 that spreads a session over two agents
// is refused (its containers would not share a network); the same
// placement in a version-1 plan, written before the rule, is still applied
// as it was, so old logs replay to what they did.
func TestAPlanThatSplitsASessionOverAgentsIsRefused(t *testing.T) {
	for _, tc := range []struct {
		version int
		want    string
	}{
		{PlanVersion, "container 1 is on agent a2, not on agent a1 with container 0: a session's containers run on one agent"},
		{1, ""},
	} {
		f, index, base := sessionFSM(t)
		mustApply(t, f, index, newSession("s1", sessionKey, api.SessionInteractive, 1000, 2, base))
		r := mustApply(t, f, index, Plan{Version: tc.version, At: base, Placements: []Placement{{SessionID: "s1", Containers: on("a1", "a2")}}})
		res := r.Value.(*PlanResult)
		s := session(t, f, "s1")
		if tc.want == "" {
			if len(res.Placed) != 1 || s.Status != api.SessionScheduled {
				t.Errorf("version %d: a split placement was not applied: %+v, %s", tc.version, res, s.Status)
			}
			continue
		}
		if len(res.Refused) != 1 || res.Refused[0].Info != tc.want || s.Status != api.SessionPending ||
			s.Refusal == nil || s.Refusal.Code != state.RefusedSplitSession {
			t.Errorf("version %d: refused %+v, session %s %+v", tc.version, res.Refused, s.Status, s.Refusal)
		}
		// The control: both containers on one agent are placed.
		r = mustApply(t, f, index, Plan{Version: tc.version, At: base, Placements: []Placement{{SessionID: "s1", Containers: on("a1", "a1")}}})
		if got := r.Value.(*PlanResult).Placed; len(got) != 1 {
			t.Errorf("version %d: a placement on one agent was not applied: %+v", tc.version, r.Value)
		}
	}
}

// Whether a session may reach beyond its node is its policy's at create
// time, decided in Apply: a policy changed later leaves it as it started.
func TestEgressIsThePolicysWhenTheSessionIsCreated(t *testing.T) {
	f, index, base := sessionFSM(t)
	mustApply(t, f, index, newSession("open", sessionKey, api.SessionInteractive, 1000, 1, base))
	off := false
	mustApply(t, f, index, PolicyUpdate{Name: "sessions", ModifiedAt: base, AllowEgress: &off})
	mustApply(t, f, index, newSession("closed", sessionKey, api.SessionInteractive, 1000, 1, base))
	if session(t, f, "open").NoEgress || !session(t, f, "closed").NoEgress {
		t.Errorf("no_egress: open %v, closed %v", session(t, f, "open").NoEgress, session(t, f, "closed").NoEgress)
	}
	// A session proposed with more ports than allowed, or a name twice, is
	// refused whatever the handler let through.
	bad := newSession("ports", sessionKey, api.SessionInteractive, 1000, 1, base)
	bad.Session.Ports = []api.SessionPort{{Name: "a", Port: 80, Protocol: "http"}, {Name: "a", Port: 81, Protocol: "tcp"}}
	if r := apply(t, f, index, bad); r.Err == nil {
		t.Errorf("a session with a port name twice was created")
	}
}
