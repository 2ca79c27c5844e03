package fsm

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/sched"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// agentTokenEntries are the agent token entries of the determinism log:
// issued tokens, registrations that use them (one approved at once, one
// waiting, others refused: used up, expired, revoked, unknown), a
// revocation and an approval.
func agentTokenEntries(base time.Time) []Command {
	later := base.Add(time.Hour)
	capacity := slots.Slots{slots.CPU: 2000, slots.Mem: 4 << 30}
	agent := func(id string) state.Agent {
		return state.Agent{ID: id, Secret: "secret-" + id, Address: "10.0.2.1:6001", Status: state.AgentAlive, Schedulable: true,
			Capacity: capacity, LastHeartbeatAt: base}
	}
	return []Command{
		AgentTokenCreate{Token: state.AgentToken{ID: "t1", Hash: "h-t1", Uses: 1, CreatedBy: "admin@x.io", CreatedAt: base}},
		AgentTokenCreate{Token: state.AgentToken{ID: "t2", Hash: "h-t2", AutoApprove: true, ExpiresAt: &later, CreatedBy: "admin@x.io", CreatedAt: base}},
		AgentTokenCreate{Token: state.AgentToken{ID: "t3", Hash: "h-t3", CreatedBy: "admin@x.io", CreatedAt: base}},
		AgentTokenCreate{Token: state.AgentToken{ID: "t1", Hash: "h-other"}}, // refused: the id exists
		AgentTokenCreate{Token: state.AgentToken{ID: "t9", Hash: "h-t1"}},    // refused: the hash exists
		AgentPut{Agent: agent("ta1"), TokenHash: "h-t1", At: base},           // waits for approval
		AgentPut{Agent: agent("ta2"), TokenHash: "h-t1", At: base},           // refused: used up
		AgentPut{Agent: agent("ta3"), TokenHash: "h-t2", At: base},           // approved by its token
		AgentPut{Agent: agent("ta4"), TokenHash: "h-t2", At: later},          // refused: expired
		AgentPut{Agent: agent("ta5"), TokenHash: "h-nothing", At: base},      // refused: no such token
		AgentTokenRevoke{ID: "t3", At: base.Add(time.Minute)},
		AgentTokenRevoke{ID: "t3", At: later}, // no change: revoked already
		AgentTokenRevoke{ID: "t-none", At: later},
		AgentPut{Agent: agent("ta6"), TokenHash: "h-t3", At: base.Add(2 * time.Minute)}, // refused: revoked
		AgentApprove{ID: "ta1", By: "admin@x.io", At: base.Add(3 * time.Minute)},
		AgentApprove{ID: "ta1", By: "someone@x.io", At: later}, // no change: approved already
		AgentApprove{ID: "ghost", By: "admin@x.io", At: later}, // refused: no agent
	}
}

func agentToken(t *testing.T, f *FSM, id string) *state.AgentToken {
	t.Helper()
	k, err := f.State().Read().AgentToken(id)
	if err != nil || k == nil {
		t.Fatalf("agent token %s: %v, %v", id, k, err)
	}
	return k
}

func TestAgentTokenEntriesDecideUsesExpiryAndRevocationInApply(t *testing.T) {
	f := newTestFSM()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var index uint64
	wantUnauthorized := map[string]string{
		"ta2": "this agent token is used up (1 of 1 registrations)",
		"ta4": "this agent token expired at 2026-01-02T04:04:05Z",
		"ta5": WrongAgentToken,
		"ta6": "this agent token was revoked at 2026-01-02T03:05:05Z",
	}
	for _, c := range agentTokenEntries(base) {
		r := apply(t, f, &index, c)
		put, isPut := c.(AgentPut)
		if !isPut {
			continue
		}
		want, refused := wantUnauthorized[put.Agent.ID]
		switch {
		case refused && !apierr.Is(r.Err, apierr.Unauthorized):
			t.Errorf("registration of %s: %v, want 401", put.Agent.ID, r.Err)
		case refused && !bytes.HasPrefix([]byte(r.Err.(*apierr.Error).Detail), []byte(want)):
			t.Errorf("registration of %s refused with %q, want it to start %q", put.Agent.ID, r.Err.(*apierr.Error).Detail, want)
		case !refused && r.Err != nil:
			t.Errorf("registration of %s: %v", put.Agent.ID, r.Err)
		}
		if refused {
			if a, _ := f.State().Read().Agent(put.Agent.ID); a != nil {
				t.Errorf("refused agent %s was recorded", put.Agent.ID)
			}
		}
	}
	if k := agentToken(t, f, "t1"); k.Used != 1 {
		t.Errorf("t1 used %d times, want 1 (the refused registration must not count)", k.Used)
	}
	if k := agentToken(t, f, "t2"); k.Used != 1 {
		t.Errorf("t2 used %d times, want 1 (the expired try must not count)", k.Used)
	}
	if k := agentToken(t, f, "t3"); k.RevokedAt == nil || !k.RevokedAt.Equal(base.Add(time.Minute)) || k.Used != 0 {
		t.Errorf("t3 %+v: want revoked at the first revocation, unused", k)
	}
	ta1 := agent(t, f, "ta1")
	if ta1.AwaitingApproval || ta1.ApprovedBy != "admin@x.io" || ta1.JoinToken != "t1" {
		t.Errorf("ta1 %+v: want approved by admin@x.io (the second approval changes nothing), joined with t1", ta1)
	}
	if ta3 := agent(t, f, "ta3"); ta3.AwaitingApproval || ta3.ApprovedBy != "" || ta3.JoinToken != "t2" {
		t.Errorf("ta3 %+v: want approved by its auto_approve token", ta3)
	}
}

// Two agents race for a token's last use: whichever entry the log holds
// first gets it, the other is refused, whatever the handlers saw.
func TestTwoRegistrationsForTheLastUseOneWins(t *testing.T) {
	f := newTestFSM()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var index uint64
	mustApply(t, f, &index, AgentTokenCreate{Token: state.AgentToken{ID: "t", Hash: "h", Uses: 2, CreatedAt: base}})
	mustApply(t, f, &index, AgentPut{Agent: state.Agent{ID: "first", Secret: "s1", Status: state.AgentAlive}, TokenHash: "h", At: base})
	// Both proposers saw one use left.
	a := apply(t, f, &index, AgentPut{Agent: state.Agent{ID: "racer-a", Secret: "sa", Status: state.AgentAlive}, TokenHash: "h", At: base})
	b := apply(t, f, &index, AgentPut{Agent: state.Agent{ID: "racer-b", Secret: "sb", Status: state.AgentAlive}, TokenHash: "h", At: base})
	if a.Err != nil || !apierr.Is(b.Err, apierr.Unauthorized) {
		t.Fatalf("racers: %v, %v; want the first to win and the second 401", a.Err, b.Err)
	}
	if k := agentToken(t, f, "t"); k.Used != 2 {
		t.Fatalf("used %d, want 2", k.Used)
	}
}

// The Plan applier is the last word on placement: a plan that puts a
// session on an agent awaiting approval is refused with the reason, and
// the same plan is accepted once the agent is approved.
func TestPlanOnAnAgentAwaitingApprovalIsRefused(t *testing.T) {
	f := newTestFSM()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var index uint64
	for _, c := range testBootstrap(base) {
		mustApply(t, f, &index, c)
	}
	mustApply(t, f, &index, AgentTokenCreate{Token: state.AgentToken{ID: "t", Hash: "h", CreatedAt: base}})
	mustApply(t, f, &index, AgentPut{Agent: state.Agent{ID: "rogue", Secret: "s", Status: state.AgentAlive, Schedulable: true,
		Capacity: slots.Slots{slots.CPU: 8000, slots.Mem: 16 << 30}}, TokenHash: "h", At: base})
	mustApply(t, f, &index, newSession("s1", "AKADMIN000000000000", api.SessionBatch, 1000, 1, base))
	r := mustApply(t, f, &index, Plan{At: base, Placements: []Placement{{SessionID: "s1", Containers: on("rogue")}}})
	res := r.Value.(*PlanResult)
	want := "agent rogue awaits approval (berth agent approve rogue)"
	if len(res.Placed) != 0 || len(res.Refused) != 1 || res.Refused[0].Info != want {
		t.Fatalf("plan on an unapproved agent: %+v, want refused with %q", res, want)
	}
	if s, _ := f.State().Read().Session("s1"); s.Status != api.SessionPending || s.Info() != want {
		t.Fatalf("session %s %q, want PENDING saying %q", s.Status, s.Info(), want)
	}
	// Control: the very same plan goes through once the agent is approved.
	mustApply(t, f, &index, AgentApprove{ID: "rogue", By: "admin@x.io", At: base})
	r = mustApply(t, f, &index, Plan{At: base, Placements: []Placement{{SessionID: "s1", Containers: on("rogue")}}})
	if res := r.Value.(*PlanResult); len(res.Placed) != 1 {
		t.Fatalf("plan after approval: %+v, want placed", res)
	}
}

// testBootstrap is the first entry of the test log: domain, group, the
// default policy and a superadmin with a keypair.
func testBootstrap(base time.Time) []Command {
	return []Command{Bootstrap{
		Domain: state.Domain{Name: "default", IsActive: true, CreatedAt: base},
		Group:  state.Group{Domain: "default", Name: "default", IsActive: true, CreatedAt: base},
		Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "default", MaxContainersPerSession: 1, CreatedAt: base}},
		Admin: state.User{Email: "admin@x.io", Username: "admin", Role: api.RoleSuperadmin, Status: api.StatusActive, Domain: "default",
			Groups: []string{"default"}, CreatedAt: base},
		AdminKeypair: state.Keypair{AccessKey: "AKADMIN000000000000", SecretKey: "s", User: "admin@x.io", IsActive: true, IsAdmin: true,
			ResourcePolicy: "default", CreatedAt: base},
		ClusterSecret: "secret",
	}}
}

// An agent recorded before approval existed — in a snapshot or in a log
// entry an older manager wrote — is approved: an upgrade must not strand
// the nodes that run the cluster's sessions.
func TestAgentsFromBeforeApprovalExistedAreApproved(t *testing.T) {
	// The agent record exactly as managers before agent tokens wrote it.
	old := []byte(`{"id":"old-snap","address":"10.0.0.9:6001","secret":"s","status":"ALIVE","schedulable":true,` +
		`"capacity":{"cpu":4000,"mem":8589934592},"node":{"hostname":"n"},"images":[],"version":"0.4.0",` +
		`"last_heartbeat_at":"2026-01-02T03:04:05Z","create_index":3,"modify_index":3}`)
	var snap bytes.Buffer
	snap.Write(snapshotMagic[:])
	var hdr [5]byte
	hdr[0] = 9 // the agents table
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(old)))
	snap.Write(hdr[:])
	snap.Write(old)
	f := newTestFSM()
	if err := f.Restore(io.NopCloser(&snap)); err != nil {
		t.Fatal(err)
	}
	// And a registration entry as an older manager proposed it.
	entry := append([]byte{byte(MsgAgentPut)}, []byte(`{"agent":{"id":"old-log","secret":"s2","status":"ALIVE","schedulable":true,`+
		`"capacity":{"cpu":4000,"mem":8589934592},"last_heartbeat_at":"2026-01-02T03:04:05Z"}}`)...)
	if r := f.ApplyEntry(10, entry); r.Err != nil {
		t.Fatal(r.Err)
	}
	tx := f.State().Read()
	for _, id := range []string{"old-snap", "old-log"} {
		a := agent(t, f, id)
		if a.AwaitingApproval {
			t.Errorf("%s decodes as awaiting approval", id)
		}
		v, err := sched.StateSource(tx).Agent(id)
		if err != nil || v == nil || v.AwaitingApproval {
			t.Errorf("%s as the scheduler sees it: %+v, %v; want approved", id, v, err)
		}
	}
}
