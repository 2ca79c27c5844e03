package leader

import (
	"context"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Tests of the duties one round at a time, on the real FSM.

// createSession records a PENDING session of one container asking one core
// under the admin's keypair.
func (e *env) createSession(t *testing.T, id string) {
	t.Helper()
	resp, err := e.c.Propose(context.Background(), fsm.SessionsCreate{Sessions: []state.Session{{ID: id, AccessKey: "AKADMIN",
		Owner: "admin@example.com", Image: "img", Type: api.SessionInteractive, Status: api.SessionPending,
		Requested: slots.Slots{slots.CPU: 1000, slots.Mem: 1 << 20}, ClusterSize: 1, CreatedAt: e.clock.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	if created, err := fsm.Value[[]fsm.SessionCreated](resp); err != nil || created[0].Err != nil {
		t.Fatalf("create session %s: %v %v", id, err, created)
	}
}

// A scheduler pass places a PENDING session on the agent that has room and
// proposes it as one plan; the next pass, with nothing pending, writes
// nothing.
func TestASchedulerPassPlacesWhatFits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bootstrap(t)
	e.aliveAgent(t, "agent-a")
	e.createSession(t, "s-1")
	sc := e.l.newScheduler()
	if _, err := sc.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, _ := e.c.Read().Session("s-1")
	if s.Status != api.SessionScheduled || len(s.Containers) != 1 || s.Containers[0].Agent != "agent-a" {
		t.Fatalf("after a pass the session is %s on %+v", s.Status, s.Containers)
	}
	if _, err := sc.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.c.count(fsm.MsgPlan); n != 1 {
		t.Errorf("%d plans, want one", n)
	}
	if got := counterValue(t, e.l.metrics.placements); got != 1 {
		t.Errorf("berth_scheduler_placements_total %v, want 1", got)
	}
}

// The idle duty writes the activity it gathered in one entry, ends a
// session idle past its policy's timeout, and spares one used through the
// API meanwhile.
func TestIdleRoundsWriteActivityAndEndIdleSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bootstrap(t)
	idleTimeout := int64(60)
	e.c.must(t, fsm.PolicyUpdate{Name: "default", IdleTimeout: &idleTimeout, ModifiedAt: e.clock.Now()})
	e.aliveAgent(t, "agent-a")
	for _, id := range []string{"s-idle", "s-used"} {
		e.createSession(t, id)
	}
	if _, err := e.l.newScheduler().pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"s-idle", "s-used"} {
		e.c.must(t, fsm.SessionsReport{At: e.clock.Now(), Agent: "agent-a", Reports: []fsm.ContainerReport{{SessionID: id, Index: 0, Status: "running"}}})
	}
	tm := newTerm(e.clock.Now())
	e.l.term.Store(tm)
	d := e.l.newIdle(tm)
	e.clock.Advance(50 * time.Second)
	e.l.SessionUsed("s-used")
	e.l.SessionUsed("s-used")
	e.clock.Advance(20 * time.Second) // s-idle: 70 s without activity
	d.round(context.Background())
	if n := e.c.count(fsm.MsgSessionsTouch); n != 1 {
		t.Errorf("%d SessionsTouch entries, want one", n)
	}
	tx := e.c.Read()
	if s, _ := tx.Session("s-idle"); s.Status != api.SessionTerminating {
		t.Errorf("idle session is %s", s.Status)
	}
	if s, _ := tx.Session("s-used"); s.Status != api.SessionRunning || s.LastActivityAt == nil {
		t.Errorf("used session is %s, last activity %v", s.Status, s.LastActivityAt)
	}
}

// The periodic usage check of a cluster whose records agree writes nothing;
// the endpoint's always proposes the repair, so every manager mends its
// own copy.
func TestAUsageCheckOfAHealthyClusterWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bootstrap(t)
	e.aliveAgent(t, "agent-a")
	out, err := e.l.checkUsage(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Drift) != 0 || out.Checked.Agents != 1 || out.Checked.Keypairs != 1 {
		t.Fatalf("check %+v", out)
	}
	if n := e.c.count(fsm.MsgUsageRecalculate); n != 0 {
		t.Fatalf("the periodic check of a healthy cluster wrote %d entries", n)
	}
	if _, err := e.l.RecalculateUsage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.c.count(fsm.MsgUsageRecalculate); n != 1 {
		t.Fatalf("RECALCULATE USAGE wrote %d entries, want 1", n)
	}
}

// The token sweep removes the login tokens past their expiry and keeps the
// others.
func TestTheTokenSweepRemovesExpiredTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bootstrap(t)
	now := e.clock.Now()
	for hash, expires := range map[string]time.Time{"expired": now.Add(-time.Minute), "live": now.Add(time.Hour)} {
		e.c.must(t, fsm.TokenCreate{Token: state.Token{Hash: hash, User: "admin@example.com", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: expires}})
	}
	e.l.newTokenSweep().sweep(context.Background())
	tx := e.c.Read()
	if tok, _ := tx.Token("expired"); tok != nil {
		t.Error("the expired token is still there")
	}
	if tok, _ := tx.Token("live"); tok == nil {
		t.Error("the live token was removed")
	}
}
