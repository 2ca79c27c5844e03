package fsm

import (
	"slices"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// disconnectEntries are the disconnection entries of the determinism log:
// agent "ad" runs sd1 (policy without max_disconnect) and sd2 (policy
// max_disconnect 10 s); it is disconnected, sd2 outlives its policy's
// grace, the agent comes back, is disconnected again and outlives the
// managers' grace. Step i of disconnectSteps checks the state after entry
// i.
func disconnectEntries(base time.Time) []Command {
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	policy := func(name string, maxDisconnect *int64) PolicyCreate {
		return PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: name,
			TotalResourceSlots: slots.Limits{slots.CPU: 8000}, MaxContainersPerSession: 1, MaxDisconnect: maxDisconnect, CreatedAt: base}}}
	}
	return []Command{
		policy("disc", nil),
		policy("disc-short", ptr(int64(10))),
		KeypairPut{Keypair: state.Keypair{AccessKey: "AKDISC0000000000000", User: "admin@x.io", IsActive: true, ResourcePolicy: "disc", CreatedAt: base}},
		KeypairPut{Keypair: state.Keypair{AccessKey: "AKDISCSHORT00000000", User: "admin@x.io", IsActive: true, ResourcePolicy: "disc-short", CreatedAt: base}},
		AgentPut{Agent: state.Agent{ID: "ad", Secret: "sd", Status: state.AgentAlive, Schedulable: true,
			Capacity: slots.Slots{slots.CPU: 8000, slots.Mem: 16 << 30}, LastHeartbeatAt: base}},
		newSession("sd1", "AKDISC0000000000000", api.SessionBatch, 1000, 1, at(1)),
		newSession("sd2", "AKDISCSHORT00000000", api.SessionBatch, 1000, 1, at(1)),
		Plan{At: at(2), Placements: []Placement{{SessionID: "sd1", Containers: on("ad")}, {SessionID: "sd2", Containers: on("ad")}}},
		SessionsReport{At: at(3), Agent: "ad", Reports: []ContainerReport{
			{SessionID: "sd1", Index: 0, Status: "running"}, {SessionID: "sd2", Index: 0, Status: "running"}}},
		// 9: silent since 90 s.
		AgentsDisconnected{At: at(100), Agents: []LostAgent{{ID: "ad", LastSeen: at(90)}, {ID: "ghost", LastSeen: at(90)}}},
		AgentsDisconnected{At: at(101), Agents: []LostAgent{{ID: "ad", LastSeen: at(90)}}}, // skipped: not ALIVE
		AgentsDisconnectExpire{At: at(100), Grace: time.Minute, Agents: []LostAgent{{ID: "ad", LastSeen: at(90)}}},
		// 12: 11 s silent: sd2's 10 s are over, not the managers' minute.
		AgentsDisconnectExpire{At: at(101), Grace: time.Minute, Agents: []LostAgent{{ID: "ad", LastSeen: at(90)}}},
		// 13: a plan onto the disconnected agent is refused.
		newSession("sd3", "AKDISC0000000000000", api.SessionBatch, 1000, 1, at(102)),
		Plan{At: at(103), Placements: []Placement{{SessionID: "sd3", Containers: on("ad")}}},
		// 15: back.
		AgentUpdate{ID: "ad", Status: ptr(state.AgentAlive), LastHeartbeatAt: ptr(at(110))},
		// 16: judged by an older heartbeat than the log has: skipped.
		AgentsDisconnected{At: at(150), Agents: []LostAgent{{ID: "ad", LastSeen: at(100)}}},
		AgentsDisconnected{At: at(150), Agents: []LostAgent{{ID: "ad", LastSeen: at(110)}}},
		// 18: judged by an older heartbeat than the log has: skipped.
		AgentsDisconnectExpire{At: at(200), Grace: time.Minute, Agents: []LostAgent{{ID: "ad", LastSeen: at(100)}}},
		AgentsDisconnectExpire{At: at(171), Grace: time.Minute, Agents: []LostAgent{{ID: "ad", LastSeen: at(110)}}},
		// 20: back; a session whose container's exit is reported late.
		AgentUpdate{ID: "ad", Status: ptr(state.AgentAlive), LastHeartbeatAt: ptr(at(200))},
		newSession("sd4", "AKDISC0000000000000", api.SessionBatch, 1000, 1, at(201)),
		Plan{At: at(202), Placements: []Placement{{SessionID: "sd4", Containers: on("ad")}}},
		SessionsReport{At: at(203), Agent: "ad", Reports: []ContainerReport{{SessionID: "sd4", Index: 0, Status: "running"}}},
		SessionsReport{At: at(260), Agent: "ad", Reports: []ContainerReport{{SessionID: "sd4", Index: 0, Status: "exited",
			ExitCode: ptr(3), ExitedAt: ptr(at(230))}}},
	}
}

// The disconnection rules, entry by entry: DISCONNECTED keeps sessions and
// slots and takes no placement; a policy's shorter max_disconnect ends its
// sessions alone; the agent back is ALIVE with what it kept; the managers'
// grace, counted from the last heartbeat recorded, makes it LOST and ends
// the rest with the time of that heartbeat; judgements by an older
// heartbeat than the log's are skipped.
func TestDisconnectionEntriesDecideEachRule(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	f := newTestFSM()
	var index uint64
	apply(t, f, &index, Bootstrap{
		Domain: state.Domain{Name: "default", IsActive: true, CreatedAt: base},
		Group:  state.Group{Domain: "default", Name: "default", IsActive: true, CreatedAt: base},
		Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "default", CreatedAt: base}},
		Admin: state.User{Email: "admin@x.io", Username: "admin", Role: api.RoleSuperadmin, Status: api.StatusActive,
			Domain: "default", Groups: []string{"default"}, CreatedAt: base},
		AdminKeypair:  state.Keypair{AccessKey: "AKADMIN000000000000", SecretKey: "s", User: "admin@x.io", IsActive: true, ResourcePolicy: "default", CreatedAt: base},
		ClusterSecret: "secret",
	})
	type want struct {
		agent      string
		sd1, sd2   api.SessionStatus
		heldCPU    int64
		value      any // the entry's answer, when it matters
		sd3Pending bool
	}
	steps := map[int]want{
		8:  {agent: state.AgentAlive, sd1: api.SessionRunning, sd2: api.SessionRunning, heldCPU: 2000},
		9:  {agent: state.AgentDisconnected, sd1: api.SessionRunning, sd2: api.SessionRunning, heldCPU: 2000, value: []string{"ad"}},
		10: {agent: state.AgentDisconnected, sd1: api.SessionRunning, sd2: api.SessionRunning, heldCPU: 2000, value: []string(nil)},
		11: {agent: state.AgentDisconnected, sd1: api.SessionRunning, sd2: api.SessionRunning, heldCPU: 2000, value: &DisconnectExpiry{}},
		12: {agent: state.AgentDisconnected, sd1: api.SessionRunning, sd2: api.SessionError, heldCPU: 1000, value: &DisconnectExpiry{Sessions: []string{"sd2"}}},
		14: {agent: state.AgentDisconnected, sd1: api.SessionRunning, sd2: api.SessionError, heldCPU: 1000, sd3Pending: true},
		15: {agent: state.AgentAlive, sd1: api.SessionRunning, sd2: api.SessionError, heldCPU: 1000, sd3Pending: true},
		16: {agent: state.AgentAlive, sd1: api.SessionRunning, sd2: api.SessionError, heldCPU: 1000, sd3Pending: true, value: []string(nil)},
		17: {agent: state.AgentDisconnected, sd1: api.SessionRunning, sd2: api.SessionError, heldCPU: 1000, sd3Pending: true, value: []string{"ad"}},
		18: {agent: state.AgentDisconnected, sd1: api.SessionRunning, sd2: api.SessionError, heldCPU: 1000, sd3Pending: true, value: &DisconnectExpiry{}},
		19: {agent: state.AgentLost, sd1: api.SessionError, sd2: api.SessionError, heldCPU: 0, sd3Pending: true, value: &DisconnectExpiry{Lost: []string{"ad"}, Sessions: []string{"sd1"}}},
	}
	for i, c := range disconnectEntries(base)[:20] { // the rest is TestALateExitEndsItsSessionAtItsRealTime's
		r := apply(t, f, &index, c)
		w, check := steps[i]
		if !check {
			continue
		}
		if r.Err != nil {
			t.Fatalf("entry %d %T: %v", i, c, r.Err)
		}
		tx := f.State().Read()
		ag, _ := tx.Agent("ad")
		sd1, _ := tx.Session("sd1")
		sd2, _ := tx.Session("sd2")
		held, _ := tx.OccupiedOnAgent("ad")
		if ag.Status != w.agent || sd1.Status != w.sd1 || sd2.Status != w.sd2 || held[slots.CPU] != w.heldCPU {
			t.Fatalf("after entry %d %T: agent %s, sd1 %s, sd2 %s, %d mcpu held; want %s, %s, %s, %d",
				i, c, ag.Status, sd1.Status, sd2.Status, held[slots.CPU], w.agent, w.sd1, w.sd2, w.heldCPU)
		}
		if w.sd3Pending {
			if sd3, _ := tx.Session("sd3"); sd3.Status != api.SessionPending {
				t.Fatalf("after entry %d: sd3 is %s: placed on a disconnected agent", i, sd3.Status)
			}
		}
		switch v := w.value.(type) {
		case []string:
			if got, _ := r.Value.([]string); !slices.Equal(got, v) {
				t.Errorf("entry %d answered %v, want %v", i, got, v)
			}
		case *DisconnectExpiry:
			got, _ := r.Value.(*DisconnectExpiry)
			if got == nil || !slices.Equal(got.Lost, v.Lost) || !slices.Equal(got.Sessions, v.Sessions) {
				t.Errorf("entry %d answered %+v, want %+v", i, got, v)
			}
		}
	}
	tx := f.State().Read()
	ag, _ := tx.Agent("ad")
	if !ag.LastHeartbeatAt.Equal(at(110)) {
		t.Errorf("last heartbeat %v, want the one the disconnection recorded (%v)", ag.LastHeartbeatAt, at(110))
	}
	sd1, _ := tx.Session("sd1")
	sd2, _ := tx.Session("sd2")
	if want := AgentLostReason(at(110)); sd1.StatusInfo != want || !sd1.TerminatedAt.Equal(at(171)) {
		t.Errorf("sd1: %q at %v, want %q at %v", sd1.StatusInfo, sd1.TerminatedAt, want, at(171))
	}
	if want := AgentLostReason(at(90)); sd2.StatusInfo != want {
		t.Errorf("sd2: %q, want %q", sd2.StatusInfo, want)
	}
}

// The policy's max_disconnect and the managers' grace: the smaller wins,
// and a policy without one (or no policy) takes the managers'.
func TestTheSmallerDisconnectGraceWins(t *testing.T) {
	for _, c := range []struct {
		name   string
		policy *state.ResourcePolicy
		want   time.Duration
	}{
		{"no policy", nil, 5 * time.Minute},
		{"no max_disconnect", &state.ResourcePolicy{}, 5 * time.Minute},
		{"a shorter max_disconnect", &state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{MaxDisconnect: ptr(int64(60))}}, time.Minute},
		{"a longer max_disconnect", &state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{MaxDisconnect: ptr(int64(3600))}}, 5 * time.Minute},
		{"zero: ended at the disconnection", &state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{MaxDisconnect: ptr(int64(0))}}, 0},
	} {
		if got := c.policy.DisconnectGrace(5 * time.Minute); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// A container's exit reported late (its agent was disconnected) ends its
// session at the exit time the agent reported, held between the session's
// last change and the report; without one, at the report's time.
func TestALateExitEndsItsSessionAtItsRealTime(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	for _, c := range []struct {
		name     string
		exitedAt *time.Time
		want     time.Time
	}{
		{"the reported exit time", ptr(at(20)), at(20)},
		{"an exit time before the session ran is held at its last change", ptr(at(1)), at(3)},
		{"an exit time after the report is held at the report", ptr(at(60)), at(50)},
		{"no exit time: the report's", nil, at(50)},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newTestFSM()
			var index uint64
			mustApply(t, f, &index, Bootstrap{
				Domain: state.Domain{Name: "default", IsActive: true, CreatedAt: base},
				Group:  state.Group{Domain: "default", Name: "default", IsActive: true, CreatedAt: base},
				Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "default", CreatedAt: base}},
				Admin: state.User{Email: "admin@x.io", Username: "admin", Role: api.RoleSuperadmin, Status: api.StatusActive,
					Domain: "default", Groups: []string{"default"}, CreatedAt: base},
				AdminKeypair:  state.Keypair{AccessKey: "AKADMIN000000000000", SecretKey: "s", User: "admin@x.io", IsActive: true, ResourcePolicy: "default", CreatedAt: base},
				ClusterSecret: "secret",
			})
			for _, e := range disconnectEntries(base)[:9] { // sd1 and sd2 RUNNING since at(3)
				mustApply(t, f, &index, e)
			}
			mustApply(t, f, &index, SessionsReport{At: at(50), Agent: "ad", Reports: []ContainerReport{
				{SessionID: "sd2", Index: 0, Status: "exited", ExitCode: ptr(7), ExitedAt: c.exitedAt}}})
			s, _ := f.State().Read().Session("sd2")
			last := s.StatusHistory[len(s.StatusHistory)-1]
			if s.Status != api.SessionTerminated || s.ExitCode == nil || *s.ExitCode != 7 || !s.TerminatedAt.Equal(c.want) || !last.At.Equal(c.want) {
				t.Fatalf("session %s exit %v terminated at %v (history %v), want TERMINATED 7 at %v", s.Status, s.ExitCode, s.TerminatedAt, last.At, c.want)
			}
		})
	}
}
