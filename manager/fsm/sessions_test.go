package fsm

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// sessionKey is the keypair of the session tests, on policy "sessions":
// 4 cpu, 8 GiB, 2 containers per session, 2 concurrent sessions.
const sessionKey = "AKSESSIONS000000000"

func sessionsPolicy(base time.Time) PolicyCreate {
	return PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "sessions",
		TotalResourceSlots: slots.Limits{slots.CPU: 4000, slots.Mem: 8 << 30}, MaxContainersPerSession: 2,
		MaxConcurrentSessions: ptr(2), CreatedAt: base}}}
}

func newSession(id, ak, typ string, cpuMilli int64, size int, at time.Time) SessionCreate {
	return SessionCreate{Session: state.Session{ID: id, Name: id, AccessKey: ak, Image: "berth/base:latest", Type: typ,
		ClusterSize: size, Requested: slots.Slots{slots.CPU: cpuMilli, slots.Mem: 1 << 30}, CreatedAt: at}}
}

// on places a session's containers on agents, without GPU slices.
func on(agents ...string) []PlacedContainer {
	cs := make([]PlacedContainer, len(agents))
	for i, a := range agents {
		cs[i].Agent = a
	}
	return cs
}

func exitReport(id string, index, code int) ContainerReport {
	return ContainerReport{SessionID: id, Index: index, Status: "exited", ExitCode: &code}
}

// sessionEntries are the session entries of the determinism log: creates
// (some refused), plans with placements that fit, no longer fit or are
// stale, reports through the lifecycle, terminations, touches and the loss
// of an agent.
func sessionEntries(base time.Time) []Command {
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	return []Command{
		sessionsPolicy(base),
		KeypairPut{Keypair: state.Keypair{AccessKey: sessionKey, User: "admin@x.io", IsActive: true, ResourcePolicy: "sessions", CreatedAt: base}},
		newSession("s1", sessionKey, api.SessionBatch, 1000, 1, at(1)),
		newSession("s2", sessionKey, api.SessionInteractive, 1000, 2, at(2)),
		newSession("s3", sessionKey, api.SessionInteractive, 2000, 1, at(3)),
		newSession("s4", sessionKey, api.SessionBatch, 1000, 1, at(4)),
		newSession("s5", "AKADMIN000000000000", api.SessionBatch, 1000, 1, at(5)),
		newSession("s1", sessionKey, api.SessionBatch, 1000, 1, at(6)),                // refused: the id exists
		newSession("s6", fmt.Sprintf("AK%018d", 3), api.SessionBatch, 1000, 1, at(6)), // refused: inactive or unknown
		newSession("s7", "AKNOBODY", api.SessionBatch, 1000, 1, at(6)),                // refused: no keypair
		Plan{At: at(10), Placements: []Placement{
			{SessionID: "s1", Containers: on("a1")}, {SessionID: "s2", Containers: on("a1", "a1")},
			{SessionID: "s3", Containers: on("a1")},                                             // no longer fits: concurrency 2/2
			{SessionID: "s1", Containers: on("a1")}, {SessionID: "ghost", Containers: on("a1")}, // stale
		}, Waits: []Wait{{SessionID: "s4", Info: "concurrency 2/2"}, {SessionID: "s5", Info: "concurrency 0/0"}}},
		Plan{At: at(11), Placements: []Placement{{SessionID: "s4", Containers: on("a2")}}}, // a2 is lost
		SessionsReport{At: at(12), Agent: "a1", Reports: []ContainerReport{
			{SessionID: "s1", Index: 0, Status: "running"}, {SessionID: "s2", Index: 0, Status: "running"},
			{SessionID: "s2", Index: 1, Status: "created"}, {SessionID: "s5", Index: 0, Status: "running"}}},
		SessionsReport{At: at(13), Agent: "a1", Reports: []ContainerReport{exitReport("s1", 0, 3)}},
		SessionsTouch{LastActivity: map[string]time.Time{"s2": at(20), "ghost": at(20), "s1": at(20)}},
		SessionTerminate{SessionID: "s4", At: at(21), Reason: "user-request"},
		SessionTerminate{SessionID: "s2", At: at(22), Reason: "idle-timeout"},
		SessionTerminate{SessionID: "ghost", At: at(22)}, // refused: no session
		SessionsReport{At: at(23), Agent: "a1", Reports: []ContainerReport{exitReport("s2", 0, 0), {SessionID: "s2", Index: 1, Status: "gone"}}},
		Plan{At: at(30), Placements: []Placement{{SessionID: "s3", Containers: on("a1")}}},
		AgentsLost{At: at(40), Agents: []LostAgent{{ID: "a1", LastSeen: base.Add(time.Minute)}}},
	}
}

// sessionFSM is an FSM with the test log's bootstrap, the sessions policy
// and keypair, and agents a1 (4 cpu, 8 GiB) and a2 (2 cpu, 4 GiB).
func sessionFSM(t *testing.T) (*FSM, *uint64, time.Time) {
	t.Helper()
	f := newTestFSM()
	applyAll(t, f, testLog(t, 1, 0)[:1])
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	index := uint64(10)
	for _, c := range []Command{
		sessionsPolicy(base),
		KeypairPut{Keypair: state.Keypair{AccessKey: sessionKey, User: "admin@x.io", IsActive: true, ResourcePolicy: "sessions", CreatedAt: base}},
		AgentPut{Agent: state.Agent{ID: "a1", Status: state.AgentAlive, Schedulable: true, Capacity: slots.Slots{slots.CPU: 4000, slots.Mem: 8 << 30}, LastHeartbeatAt: base}},
		AgentPut{Agent: state.Agent{ID: "a2", Status: state.AgentAlive, Schedulable: true, Capacity: slots.Slots{slots.CPU: 2000, slots.Mem: 4 << 30}, LastHeartbeatAt: base}},
	} {
		if r := apply(t, f, &index, c); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	return f, &index, base
}

func session(t *testing.T, f *FSM, id string) *state.Session {
	t.Helper()
	s, err := f.State().Read().Session(id)
	if err != nil || s == nil {
		t.Fatalf("session %s: %v, %v", id, s, err)
	}
	return s
}

func mustApply(t *testing.T, f *FSM, index *uint64, c Command) *Response {
	t.Helper()
	r := apply(t, f, index, c)
	if r.Err != nil {
		t.Fatalf("%T: %v", c, r.Err)
	}
	return r
}

// history renders status_history as "STATUS(reason)" items.
func history(s *state.Session) []string {
	var out []string
	for _, h := range s.StatusHistory {
		out = append(out, fmt.Sprintf("%s(%s)", h.Status, h.Reason))
	}
	return out
}

func TestSessionCreateRecordsAPendingSession(t *testing.T) {
	f, index, base := sessionFSM(t)
	c := newSession("s1", sessionKey, api.SessionBatch, 1000, 0, base)
	c.Session.Owner = "someone-else@x.io"
	c.Session.Status = api.SessionRunning
	c.Session.Attempts = 7
	r := mustApply(t, f, index, c)
	s := session(t, f, "s1")
	if s != r.Value.(*state.Session) && s.ID != "s1" {
		t.Fatal("the result is not the session written")
	}
	if s.Status != api.SessionPending || s.Owner != "admin@x.io" || s.Domain != "default" || s.ClusterSize != 1 || s.Attempts != 0 {
		t.Errorf("created %+v: want PENDING, owned by the keypair's user, one container, no attempts", s)
	}
	if len(s.StatusHistory) != 1 || s.StatusHistory[0] != (api.StatusChange{Status: api.SessionPending, At: base, Reason: "created"}) {
		t.Errorf("history %+v", s.StatusHistory)
	}
	if s.CreateIndex != *index || s.TerminatedAt != nil {
		t.Errorf("create index %d (want %d), terminated_at %v", s.CreateIndex, *index, s.TerminatedAt)
	}
}

func TestSessionCreateRefusals(t *testing.T) {
	f, index, base := sessionFSM(t)
	mustApply(t, f, index, newSession("s1", sessionKey, api.SessionBatch, 1000, 1, base))
	off := false
	mustApply(t, f, index, KeypairPut{Keypair: state.Keypair{AccessKey: "AKOFF", User: "admin@x.io", IsActive: true, ResourcePolicy: "sessions"}})
	mustApply(t, f, index, KeypairUpdate{AccessKey: "AKOFF", IsActive: &off})
	huge := newSession("s5", sessionKey, api.SessionBatch, 1000, 1, base)
	huge.Session.Requested = slots.Slots{slots.CPU: 1 << 62}
	cases := []struct {
		c    SessionCreate
		kind apierr.Kind
	}{
		{newSession("s1", sessionKey, api.SessionBatch, 1000, 1, base), apierr.Conflict},
		{newSession("", sessionKey, api.SessionBatch, 1000, 1, base), apierr.Invalid},
		{newSession("s2", "AKNONE", api.SessionBatch, 1000, 1, base), apierr.Invalid},
		{newSession("s3", "AKOFF", api.SessionBatch, 1000, 1, base), apierr.Forbidden},
		{huge, apierr.Invalid},
	}
	for _, tc := range cases {
		if r := apply(t, f, index, tc.c); !apierr.Is(r.Err, tc.kind) {
			t.Errorf("create %q: %v, want kind %d", tc.c.Session.ID, r.Err, tc.kind)
		}
	}
	// An inactive user's keypair is refused even if it was made active again.
	inactive, on := api.StatusInactive, true
	mustApply(t, f, index, UserCreate{
		User:    state.User{Email: "u@x.io", Username: "u", Role: api.RoleUser, Status: api.StatusActive, Domain: "default"},
		Keypair: state.Keypair{AccessKey: "AKUSER", User: "u@x.io", IsActive: true, ResourcePolicy: "sessions"}})
	mustApply(t, f, index, UserUpdate{Email: "u@x.io", Status: &inactive})
	mustApply(t, f, index, KeypairUpdate{AccessKey: "AKUSER", IsActive: &on})
	if r := apply(t, f, index, newSession("s7", "AKUSER", api.SessionBatch, 1000, 1, base)); !apierr.Is(r.Err, apierr.Forbidden) ||
		r.Err.Error() != "Forbidden: user u@x.io is inactive" {
		t.Errorf("create by an inactive user: %v", r.Err)
	}
}

func TestPlanPlacesReverifiesAndRecordsWaits(t *testing.T) {
	f, index, base := sessionFSM(t)
	for i, size := range []int{2, 1, 1, 1} {
		mustApply(t, f, index, newSession(fmt.Sprintf("s%d", i+1), sessionKey, api.SessionInteractive, 1000, size, base))
	}
	at := base.Add(time.Minute)
	r := mustApply(t, f, index, Plan{At: at, Placements: []Placement{
		{SessionID: "s1", Containers: on("a1", "a2")},
		{SessionID: "s2", Containers: on("a1")},
		{SessionID: "s3", Containers: on("a1")}, // the keypair's third: concurrency 2/2
		{SessionID: "s2", Containers: on("a2")}, // a duplicate: s2 is no longer PENDING
		{SessionID: "nope", Containers: on("a1")},
	}, Waits: []Wait{{SessionID: "s4", Info: "concurrency 2/2"}, {SessionID: "s1", Info: "ignored: placed"}}})
	res := r.Value.(*PlanResult)
	if !slices.Equal(res.Placed, []string{"s1", "s2"}) || !slices.Equal(res.Stale, []string{"s2", "nope"}) ||
		len(res.Refused) != 1 || res.Refused[0] != (Wait{SessionID: "s3", Info: "concurrency 2/2"}) {
		t.Fatalf("result %+v", res)
	}
	s1 := session(t, f, "s1")
	if s1.Status != api.SessionScheduled || len(s1.Containers) != 2 || s1.Containers[1].Agent != "a2" ||
		s1.Containers[0].Status != "scheduled" || s1.Containers[1].Slots[slots.CPU] != 1000 || !slices.Equal(s1.Agents, []string{"a1", "a2"}) {
		t.Errorf("s1 %+v", s1)
	}
	if got := history(s1); !slices.Equal(got, []string{"PENDING(created)", "SCHEDULED(placed on a1, a2)"}) || !s1.StatusHistory[1].At.Equal(at) {
		t.Errorf("s1 history %v", s1.StatusHistory)
	}
	for id, want := range map[string]string{"s3": "concurrency 2/2", "s4": "concurrency 2/2"} {
		if s := session(t, f, id); s.Status != api.SessionPending || s.Info() != want || s.Attempts != 1 {
			t.Errorf("%s: %s %q attempts %d", id, s.Status, s.Info(), s.Attempts)
		}
	}
	tx := f.State().Read()
	if occ, _ := tx.OccupiedOnAgent("a1"); occ[slots.CPU] != 2000 {
		t.Errorf("a1 holds %v", occ)
	}
	// The keypair's concurrency frees up when s2 ends, but a placement on
	// an agent that has no room any more is refused with the numbers.
	mustApply(t, f, index, SessionTerminate{SessionID: "s2", At: at, Reason: "user-request"})
	mustApply(t, f, index, SessionsReport{At: at, Agent: "a1", Reports: []ContainerReport{{SessionID: "s2", Status: "gone"}}})
	big := newSession("s5", sessionKey, api.SessionInteractive, 1000, 1, base)
	big.Session.Requested = slots.Slots{slots.Mem: 5 << 30}
	mustApply(t, f, index, big)
	r = mustApply(t, f, index, Plan{At: at, Placements: []Placement{{SessionID: "s5", Containers: on("a2")}}})
	if got := r.Value.(*PlanResult).Refused; len(got) != 1 || got[0].Info != "agent a2: mem 1GiB + 5GiB > 4GiB" {
		t.Errorf("refused %+v", got)
	}
}

func TestSessionTerminate(t *testing.T) {
	f, index, base := sessionFSM(t)
	for _, id := range []string{"pending", "running"} {
		mustApply(t, f, index, newSession(id, sessionKey, api.SessionInteractive, 1000, 1, base))
	}
	mustApply(t, f, index, Plan{At: base, Placements: []Placement{{SessionID: "running", Containers: on("a1")}}})
	mustApply(t, f, index, SessionsReport{At: base, Agent: "a1", Reports: []ContainerReport{{SessionID: "running", Status: "running"}}})
	at := base.Add(time.Hour)
	mustApply(t, f, index, SessionTerminate{SessionID: "pending", At: at})
	if s := session(t, f, "pending"); s.Status != api.SessionCancelled || s.StatusInfo != "user-request" || s.TerminatedAt == nil || !s.TerminatedAt.Equal(at) {
		t.Errorf("pending → %s %q %v", s.Status, s.StatusInfo, s.TerminatedAt)
	}
	mustApply(t, f, index, SessionTerminate{SessionID: "running", At: at, Reason: "idle-timeout"})
	s := session(t, f, "running")
	if s.Status != api.SessionTerminating || s.StatusInfo != "idle-timeout" || s.TerminatedAt != nil {
		t.Errorf("running → %s %q", s.Status, s.StatusInfo)
	}
	// Asking again, in TERMINATING or once ended, changes nothing.
	for _, id := range []string{"running", "pending"} {
		before := session(t, f, id).ModifyIndex
		mustApply(t, f, index, SessionTerminate{SessionID: id, At: at.Add(time.Hour), Reason: "again"})
		if after := session(t, f, id); after.ModifyIndex != before || after.StatusInfo == "again" {
			t.Errorf("terminating %s twice rewrote it", id)
		}
	}
	// It holds its slots until its containers are gone.
	if n, _ := f.State().Read().OccupyingSessions(sessionKey); n != 1 {
		t.Errorf("%d occupying sessions while TERMINATING, want 1", n)
	}
	mustApply(t, f, index, SessionsReport{At: at, Agent: "a1", Reports: []ContainerReport{exitReport("running", 0, 137)}})
	s = session(t, f, "running")
	if got := history(s); !slices.Equal(got, []string{"PENDING(created)", "SCHEDULED(placed on a1)", "RUNNING(containers running)",
		"TERMINATING(idle-timeout)", "TERMINATED(idle-timeout)"}) {
		t.Errorf("history %v", got)
	}
	if n, _ := f.State().Read().OccupyingSessions(sessionKey); n != 0 {
		t.Errorf("%d occupying sessions after TERMINATED", n)
	}
	if r := apply(t, f, index, SessionTerminate{SessionID: "ghost", At: at}); !apierr.Is(r.Err, apierr.NotFound) {
		t.Errorf("terminate unknown: %v", r.Err)
	}
}

func TestSessionsTouchKeepsTheLatestActivity(t *testing.T) {
	f, index, base := sessionFSM(t)
	mustApply(t, f, index, newSession("s", sessionKey, api.SessionInteractive, 1000, 1, base))
	later, earlier := base.Add(time.Minute), base.Add(time.Second)
	mustApply(t, f, index, SessionsTouch{LastActivity: map[string]time.Time{"s": later, "ghost": later}})
	mustApply(t, f, index, SessionsTouch{LastActivity: map[string]time.Time{"s": earlier}})
	if s := session(t, f, "s"); s.LastActivityAt == nil || !s.LastActivityAt.Equal(later) {
		t.Errorf("last activity %v, want %v", s.LastActivityAt, later)
	}
}

func TestAgentLostEndsTheSessionsOnIt(t *testing.T) {
	f, index, base := sessionFSM(t)
	for _, id := range []string{"on-a1", "on-both"} {
		mustApply(t, f, index, newSession(id, sessionKey, api.SessionInteractive, 1000, 2, base))
	}
	mustApply(t, f, index, newSession("on-a2", "AKADMIN000000000000", api.SessionInteractive, 1000, 1, base))
	mustApply(t, f, index, Plan{At: base, Placements: []Placement{
		{SessionID: "on-a1", Containers: on("a1", "a1")}, {SessionID: "on-both", Containers: on("a2", "a1")}}})
	// The admin's default policy here allows no session at all; place it
	// on a2 under a policy that does.
	mustApply(t, f, index, PolicyUpdate{Name: "default", MaxConcurrentSessions: &Nullable[int]{}})
	mustApply(t, f, index, Plan{At: base, Placements: []Placement{{SessionID: "on-a2", Containers: on("a2")}}})
	at := base.Add(time.Hour)
	r := mustApply(t, f, index, AgentsLost{At: at, Agents: []LostAgent{{ID: "a1", LastSeen: base}}})
	if !slices.Equal(r.Value.([]string), []string{"a1"}) {
		t.Fatalf("marked %v", r.Value)
	}
	for id, want := range map[string]api.SessionStatus{"on-a1": api.SessionError, "on-both": api.SessionError, "on-a2": api.SessionScheduled} {
		s := session(t, f, id)
		if s.Status != want {
			t.Errorf("%s is %s, want %s", id, s.Status, want)
		}
		if want == api.SessionError && (s.StatusInfo != "agent-lost" || s.TerminatedAt == nil || !s.TerminatedAt.Equal(at) || s.ModifyIndex != *index) {
			t.Errorf("%s: %q terminated %v modify %d", id, s.StatusInfo, s.TerminatedAt, s.ModifyIndex)
		}
	}
	tx := f.State().Read()
	if occ, _ := tx.OccupiedOnAgent("a1"); len(occ) != 0 {
		t.Errorf("a1 still holds %v", occ)
	}
	if occ, _ := tx.OccupiedOnAgent("a2"); occ[slots.CPU] != 1000 {
		t.Errorf("a2 holds %v, want on-a2's 1 cpu", occ)
	}
}

// TestOccupancySurvivesSnapshotAndRestore: usage is not in the snapshot; it
// is rebuilt from the restored sessions and equals what was kept.
func TestOccupancySurvivesSnapshotAndRestore(t *testing.T) {
	f := newTestFSM()
	applyAll(t, f, testLog(t, 5, 10))
	// Sessions holding slots at the snapshot, on a2 (a1 is lost by then).
	index := uint64(1000)
	alive := state.AgentAlive
	mustApply(t, f, &index, AgentUpdate{ID: "a2", Status: &alive, Schedulable: ptr(true)})
	for _, id := range []string{"x1", "x2"} {
		mustApply(t, f, &index, newSession(id, sessionKey, api.SessionInteractive, 500, 1, time.Now()))
		mustApply(t, f, &index, Plan{At: time.Now(), Placements: []Placement{{SessionID: id, Containers: on("a2")}}})
	}
	before, _ := f.State().Read().Usages()
	var keys []string
	for _, u := range before {
		keys = append(keys, u.Key)
	}
	// The log's GPU sessions still hold slices on g1's GPUs.
	want := []string{"agent/a2", "agent/g1", "gpu/g1/GPU-0", "gpu/g1/GPU-1", "keypair/" + gpuKey, "keypair/" + sessionKey}
	if !slices.Equal(keys, want) {
		t.Fatalf("usage rows %q, want %q", keys, want)
	}
	snap, _ := f.Snapshot()
	sink := &bufferSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	after, _ := g.State().Read().Usages()
	if len(after) != len(before) {
		t.Fatalf("restored %d usage rows, had %d", len(after), len(before))
	}
	for i := range before {
		if before[i].Key != after[i].Key || before[i].Sessions != after[i].Sessions || !sameSlots(before[i].Slots, after[i].Slots) {
			t.Errorf("usage %+v restored as %+v", before[i], after[i])
		}
	}
	checkUsage(t, g.State().Read(), "after restore")
}
