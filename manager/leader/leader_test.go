package leader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// testCluster applies every proposal to a real FSM at once, serially, at
// the next index, and remembers the entry types it was given.
type testCluster struct {
	f *fsm.FSM

	mu       sync.Mutex
	index    uint64
	proposed []fsm.MsgType
}

func newTestCluster() *testCluster {
	return &testCluster{f: fsm.New(slog.New(slog.NewTextHandler(io.Discard, nil)))}
}

func (c *testCluster) Propose(_ context.Context, cmd fsm.Command) (*fsm.Response, error) {
	data, err := fsm.Encode(cmd)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index++
	c.proposed = append(c.proposed, cmd.MsgType())
	return c.f.Apply(&raft.Log{Index: c.index, Type: raft.LogCommand, Data: data}).(*fsm.Response), nil
}

func (c *testCluster) Read() *state.Txn     { return c.f.State().Read() }
func (c *testCluster) AppliedIndex() uint64 { return c.f.AppliedIndex() }
func (c *testCluster) WaitIndex(ctx context.Context, after uint64) (uint64, error) {
	return c.f.WaitIndex(ctx, after)
}

// count is how many entries of type t were proposed.
func (c *testCluster) count(t fsm.MsgType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.proposed {
		if p == t {
			n++
		}
	}
	return n
}

// must applies a command the test needs in the state.
func (c *testCluster) must(t *testing.T, cmd fsm.Command) {
	t.Helper()
	resp, err := c.Propose(context.Background(), cmd)
	if err != nil || resp.Err != nil {
		t.Fatalf("apply %T: %v %v", cmd, err, resp.Err)
	}
}

// testNode is the leadership as the test decides it. A transfer that
// succeeds takes the leadership away, as Raft's does.
type testNode struct {
	ch          chan bool
	transferErr error
	transfers   atomic.Int32
}

func newTestNode() *testNode { return &testNode{ch: make(chan bool, 8)} }

func (n *testNode) LeaderCh() <-chan bool             { return n.ch }
func (n *testNode) Barrier(ctx context.Context) error { return nil }
func (n *testNode) LeadershipTransfer() error {
	n.transfers.Add(1)
	if n.transferErr != nil {
		return n.transferErr
	}
	n.ch <- false
	return nil
}

// fakeClock moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	c     *testCluster
	node  *testNode
	clock *fakeClock
	l     *Leader
	reg   *prometheus.Registry
}

// newEnv builds a leader over a fresh state; tweak changes its
// configuration before it is built. Run is the test's to start.
func newEnv(t *testing.T, tweak func(*Config)) *env {
	t.Helper()
	e := &env{c: newTestCluster(), node: newTestNode(), clock: &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)},
		reg: prometheus.NewRegistry()}
	cfg := Config{Cluster: e.c, Node: e.node, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: e.reg, Now: e.clock.Now,
		HeartbeatTimeout: time.Minute, SetupRetry: 10 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	e.l = New(cfg)
	return e
}

// run makes the leader watch the node until the test ends.
func (e *env) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.l.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// counterValue is a counter's value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// eventually waits for f to hold.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// aliveAgent records an ALIVE agent.
func (e *env) aliveAgent(t *testing.T, id string) {
	t.Helper()
	e.c.must(t, fsm.AgentPut{Agent: state.Agent{ID: id, Secret: "s-" + id, Status: state.AgentAlive, Schedulable: true,
		Capacity: slots.Slots{slots.CPU: 4000, slots.Mem: 8 << 30}, LastHeartbeatAt: e.clock.Now()}})
}

// bootstrap records a domain, a policy with room, and an admin with the
// keypair AKADMIN.
func (e *env) bootstrap(t *testing.T) {
	t.Helper()
	now := e.clock.Now()
	e.c.must(t, fsm.Bootstrap{
		Domain: state.Domain{Name: "default", IsActive: true, CreatedAt: now},
		Group:  state.Group{Domain: "default", Name: "default", IsActive: true, CreatedAt: now},
		Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "default", MaxContainersPerSession: 4, CreatedAt: now, ModifiedAt: now}},
		Admin: state.User{Email: "admin@example.com", Username: "admin", Role: api.RoleSuperadmin, Status: api.StatusActive,
			Domain: "default", Groups: []string{"default"}, CreatedAt: now, ModifiedAt: now},
		AdminKeypair: state.Keypair{AccessKey: "AKADMIN", SecretKey: "secret", User: "admin@example.com", IsActive: true,
			ResourcePolicy: "default", CreatedAt: now},
		ClusterSecret: "cluster-secret",
	})
}

// A leader whose setup fails hands leadership over and runs no duty: an
// agent silent past its timeout is not judged DISCONNECTED by it. The control,
// the same leader with a setup that works, judges it.
func TestALeaderThatCannotSetUpStepsDown(t *testing.T) {
	t.Parallel()
	for _, broken := range []bool{true, false} {
		t.Run(fmt.Sprintf("setup broken %v", broken), func(t *testing.T) {
			t.Parallel()
			var setups atomic.Int32
			e := newEnv(t, func(cfg *Config) {
				cfg.HeartbeatTimeout = time.Second
				cfg.Setup = func(context.Context) error {
					setups.Add(1)
					if broken {
						return errors.New("injected: the first-start objects cannot be written")
					}
					return nil
				}
			})
			e.aliveAgent(t, "agent-a")
			e.clock.Advance(time.Hour) // silent for an hour by the time the leadership starts
			e.run(t)
			e.node.ch <- true
			if broken {
				eventually(t, "leadership transferred", func() bool { return e.node.transfers.Load() == 1 })
				eventually(t, "leadership ended", func() bool { return e.l.current() == nil })
				time.Sleep(100 * time.Millisecond) // what a duty would have done by now (checks every 100 ms)
				if n := e.c.count(fsm.MsgAgentsDisconnected); n != 0 {
					t.Errorf("a leader that stepped down judged agents: %d AgentsDisconnected", n)
				}
				if e.l.Ready() {
					t.Error("a leader that stepped down is ready")
				}
				if got := counterValue(t, e.l.metrics.stepDowns); got != 1 {
					t.Errorf("berth_leader_step_downs_total %v, want 1", got)
				}
				return
			}
			// The leadership's clock started at its beginning: a full
			// timeout later, the agent is DISCONNECTED.
			eventually(t, "ready", e.l.Ready)
			e.clock.Advance(2 * time.Second)
			eventually(t, "agent judged DISCONNECTED", func() bool {
				ag, _ := e.c.Read().Agent("agent-a")
				return ag.Status == state.AgentDisconnected
			})
			if n := e.node.transfers.Load(); n != 0 {
				t.Errorf("a leader that set up transferred leadership %d times", n)
			}
			if !e.l.Ready() || setups.Load() != 1 {
				t.Errorf("ready %v after %d setups, want ready after one", e.l.Ready(), setups.Load())
			}
		})
	}
}

// A leader that can neither set up nor hand over (the only manager) tries
// to set up again after SetupRetry, and leads once it can.
func TestALeaderThatCannotHandOverSetsUpAgain(t *testing.T) {
	t.Parallel()
	var setups atomic.Int32
	e := newEnv(t, func(cfg *Config) {
		cfg.Setup = func(context.Context) error {
			if setups.Add(1) < 3 {
				return errors.New("injected: not yet")
			}
			return nil
		}
	})
	e.node.transferErr = errors.New("injected: no other voter")
	e.run(t)
	e.node.ch <- true
	// Ready turns true at each barrier, before its setup: a failed setup
	// turns it back, so wait for the third setup too.
	eventually(t, "ready after the third setup", func() bool { return setups.Load() >= 3 && e.l.Ready() })
	if got, transfers := setups.Load(), e.node.transfers.Load(); got != 3 || transfers != 2 {
		t.Errorf("%d setups and %d transfers, want 3 and 2", got, transfers)
	}
}

// Each leadership starts with a memory of its own: what agents reported to
// the previous one is gone, and a leadership that ended remembers nothing
// (a follower shows no reports and records no keypair use).
func TestEachLeadershipStartsAfresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.aliveAgent(t, "agent-a")
	e.run(t)
	e.node.ch <- true
	eventually(t, "ready", e.l.Ready)
	rec, _ := e.c.Read().Agent("agent-a")
	if _, err := e.l.Heartbeat(context.Background(), rec, &api.AgentHeartbeat{Containers: []api.ContainerReport{
		{ID: "c1", Status: "running", CPUSeconds: 2}}}); err != nil {
		t.Fatal(err)
	}
	if _, used, ok := e.l.LastHeartbeat("agent-a"); !ok || used.CPUSeconds != 2 {
		t.Fatalf("the leader does not remember the heartbeat: %v %+v", ok, used)
	}

	e.node.ch <- false
	eventually(t, "leadership ended", func() bool { return e.l.current() == nil })
	if _, _, ok := e.l.LastHeartbeat("agent-a"); ok {
		t.Error("a manager that stopped leading still shows the agent's report")
	}
	e.l.KeypairUsed("AKFOLLOWER")
	e.l.SessionUsed("s-follower")

	e.node.ch <- true
	eventually(t, "ready again", e.l.Ready)
	if _, _, ok := e.l.LastHeartbeat("agent-a"); ok {
		t.Error("a new leadership shows the previous one's report")
	}
	if uses := e.l.current().keypairs.drain(); len(uses) != 0 {
		t.Errorf("a new leadership would write uses seen while following: %v", uses)
	}
	if seen := e.l.current().activity.touched.drain(); len(seen) != 0 {
		t.Errorf("a new leadership would write activity seen while following: %v", seen)
	}
}

// An agent silent past the timeout is DISCONNECTED; one that heartbeats is
// not; the clock of an agent not heard from starts with the leadership, so
// a new leader gives every agent a full timeout.
func TestLivenessJudgesByTheLeadershipsOwnClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(cfg *Config) { cfg.HeartbeatTimeout = 30 * time.Second })
	e.aliveAgent(t, "agent-silent")
	e.aliveAgent(t, "agent-beating")
	e.clock.Advance(time.Hour) // the replicated last_heartbeat_at is an hour old
	tm := newTerm(e.clock.Now())
	v := e.l.newLiveness(tm)
	if lost, err := v.silent(e.clock.Now().Add(29 * time.Second)); err != nil || len(lost) != 0 {
		t.Fatalf("within the timeout of the leadership's start: %v %v", lost, err)
	}
	e.clock.Advance(20 * time.Second)
	tm.agents.beat("agent-beating", e.clock.Now(), nil)
	e.clock.Advance(20 * time.Second)
	lost, err := v.silent(e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := []fsm.LostAgent{{ID: "agent-silent", LastSeen: tm.since}}
	if !slices.Equal(lost, want) {
		t.Fatalf("silent %+v, want %+v", lost, want)
	}
	v.markDisconnected(context.Background())
	if ag, _ := e.c.Read().Agent("agent-silent"); ag.Status != state.AgentDisconnected || !ag.LastHeartbeatAt.Equal(tm.since) {
		t.Errorf("silent agent is %s with last heartbeat %v", ag.Status, ag.LastHeartbeatAt)
	}
	if ag, _ := e.c.Read().Agent("agent-beating"); ag.Status != state.AgentAlive {
		t.Errorf("beating agent is %s", ag.Status)
	}
	if got := counterValue(t, e.l.metrics.disconnected); got != 1 {
		t.Errorf("berth_agents_disconnected_total %v, want 1", got)
	}
	if got := counterValue(t, e.l.metrics.lost); got != 0 {
		t.Errorf("berth_agents_lost_total %v, want 0 within the grace", got)
	}
}

// runningOn places a session (one core) on the agent and reports its
// container running.
func (e *env) runningOn(t *testing.T, id, agent string) {
	t.Helper()
	e.createSession(t, id)
	if _, err := e.l.newScheduler().pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.c.must(t, fsm.SessionsReport{At: e.clock.Now(), Agent: agent, Reports: []fsm.ContainerReport{{SessionID: id, Index: 0, Status: "running"}}})
	if s, _ := e.c.Read().Session(id); s.Status != api.SessionRunning || s.Containers[0].Agent != agent {
		t.Fatalf("session %s is %s on %+v", id, s.Status, s.Containers)
	}
}

// A disconnected agent keeps its sessions and their slots through the
// grace and is LOST only after it, counted from its last heartbeat; a new
// leadership neither shortens the grace nor judges before a full heartbeat
// timeout of its own; the liveness rounds propose nothing while nothing is
// due.
func TestADisconnectedAgentIsLostOnlyAfterItsGrace(t *testing.T) {
	t.Parallel()
	const timeout, grace = 30 * time.Second, 5 * time.Minute
	e := newEnv(t, func(cfg *Config) { cfg.HeartbeatTimeout, cfg.DisconnectGrace = timeout, grace })
	e.bootstrap(t)
	e.aliveAgent(t, "agent-a")
	e.runningOn(t, "s-1", "agent-a")
	tm := newTerm(e.clock.Now())
	tm.agents.beat("agent-a", e.clock.Now(), nil)
	lastBeat := e.clock.Now()
	v := e.l.newLiveness(tm)
	round := func() {
		v.markDisconnected(context.Background())
		v.expire(context.Background())
	}
	status := func() (string, api.SessionStatus, string) {
		tx := e.c.Read()
		ag, _ := tx.Agent("agent-a")
		s, _ := tx.Session("s-1")
		held, _ := tx.OccupiedOnAgent("agent-a")
		return ag.Status, s.Status, slots.Format(slots.CPU, held[slots.CPU]).String()
	}

	e.clock.Advance(timeout + time.Second)
	round()
	if ag, s, cpu := status(); ag != state.AgentDisconnected || s != api.SessionRunning || cpu != "1" {
		t.Fatalf("past the timeout: agent %s, session %s, %s cores held; want DISCONNECTED, RUNNING, 1", ag, s, cpu)
	}
	entries := len(e.c.proposed)
	for range 5 {
		e.clock.Advance(time.Second)
		round()
	}
	if n := len(e.c.proposed); n != entries {
		t.Errorf("%d entries proposed by rounds with nothing due", n-entries)
	}

	// A failover two minutes in: the new leadership hears nothing and
	// measures from the replicated last heartbeat, not from its own start.
	e.clock.Advance(2 * time.Minute)
	tm2 := newTerm(e.clock.Now())
	v = e.l.newLiveness(tm2)
	e.clock.Advance(grace - e.clock.Now().Sub(lastBeat)) // exactly the grace: not past it
	round()
	if ag, s, _ := status(); ag != state.AgentDisconnected || s != api.SessionRunning {
		t.Fatalf("at the grace: agent %s, session %s", ag, s)
	}
	e.clock.Advance(time.Second)
	round()
	ag, s, cpu := status()
	if ag != state.AgentLost || s != api.SessionError || cpu != "0" {
		t.Fatalf("past the grace: agent %s, session %s, %s cores held; want LOST, ERROR, 0", ag, s, cpu)
	}
	ses, _ := e.c.Read().Session("s-1")
	if want := fsm.AgentLostReason(lastBeat); ses.StatusInfo != want {
		t.Errorf("status_info %q, want %q", ses.StatusInfo, want)
	}
	if got := counterValue(t, e.l.metrics.lost); got != 1 {
		t.Errorf("berth_agents_lost_total %v, want 1", got)
	}
}

// A leadership younger than one heartbeat timeout expires no grace, even
// one long past: the agent may be beating to it already.
func TestANewLeaderGivesAFullTimeoutBeforeAnyGraceEnds(t *testing.T) {
	t.Parallel()
	const timeout, grace = 30 * time.Second, time.Minute
	e := newEnv(t, func(cfg *Config) { cfg.HeartbeatTimeout, cfg.DisconnectGrace = timeout, grace })
	e.bootstrap(t)
	e.aliveAgent(t, "agent-a")
	e.runningOn(t, "s-1", "agent-a")
	e.c.must(t, fsm.AgentsDisconnected{At: e.clock.Now(), Agents: []fsm.LostAgent{{ID: "agent-a", LastSeen: e.clock.Now()}}})
	e.clock.Advance(time.Hour)
	v := e.l.newLiveness(newTerm(e.clock.Now()))
	e.clock.Advance(timeout)
	v.expire(context.Background())
	if ag, _ := e.c.Read().Agent("agent-a"); ag.Status != state.AgentDisconnected {
		t.Fatalf("within the new leadership's first timeout the agent is %s", ag.Status)
	}
	e.clock.Advance(time.Second)
	v.expire(context.Background())
	if ag, _ := e.c.Read().Agent("agent-a"); ag.Status != state.AgentLost {
		t.Fatalf("after it the agent is %s", ag.Status)
	}
}

// An agent back within the grace is ALIVE again, its running session keeps
// its record (same started_at, no new history), and its return counts as
// activity, so the idle timeout does not end the session for the
// disconnection.
func TestAnAgentBackWithinTheGraceKeepsItsSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(cfg *Config) { cfg.HeartbeatTimeout, cfg.DisconnectGrace = 30*time.Second, 5*time.Minute })
	e.bootstrap(t)
	idleTimeout := int64(60)
	e.c.must(t, fsm.PolicyUpdate{Name: "default", IdleTimeout: &idleTimeout, ModifiedAt: e.clock.Now()})
	e.aliveAgent(t, "agent-a")
	e.runningOn(t, "s-1", "agent-a")
	before, _ := e.c.Read().Session("s-1")
	tm := newTerm(e.clock.Now())
	e.l.term.Store(tm)
	d := e.l.newIdle(tm)
	e.c.must(t, fsm.AgentsDisconnected{At: e.clock.Now(), Agents: []fsm.LostAgent{{ID: "agent-a", LastSeen: e.clock.Now()}}})
	e.clock.Advance(4 * time.Minute) // idle for far longer than 60 s, but disconnected
	d.round(context.Background())
	if s, _ := e.c.Read().Session("s-1"); s.Status != api.SessionRunning {
		t.Fatalf("while its agent is disconnected the session is %s", s.Status)
	}
	rec, _ := e.c.Read().Agent("agent-a")
	if _, err := e.l.Heartbeat(context.Background(), rec, &api.AgentHeartbeat{Containers: []api.ContainerReport{
		{ID: state.ContainerID("s-1", 0), SessionID: "s-1", Status: api.ContainerRunning}}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second)
	d.round(context.Background())
	tx := e.c.Read()
	ag, _ := tx.Agent("agent-a")
	s, _ := tx.Session("s-1")
	if ag.Status != state.AgentAlive || s.Status != api.SessionRunning {
		t.Fatalf("after the return: agent %s, session %s", ag.Status, s.Status)
	}
	if !s.StartedAt.Equal(*before.StartedAt) || len(s.StatusHistory) != len(before.StatusHistory) {
		t.Errorf("the session's record moved: started %v (was %v), history %+v", s.StartedAt, before.StartedAt, s.StatusHistory)
	}
	e.clock.Advance(time.Minute)
	d.round(context.Background())
	if s, _ := e.c.Read().Session("s-1"); s.Status != api.SessionTerminating {
		t.Errorf("idle for 90 s after the return the session is %s, want TERMINATING", s.Status)
	}
}

// An agent that registers again while DISCONNECTED (its process was
// restarted during the disconnection) is back as a heartbeat would be: its
// sessions count as active.
func TestAnAgentRegisteringAgainAfterADisconnectionIsActivity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bootstrap(t)
	e.aliveAgent(t, "agent-a")
	e.runningOn(t, "s-1", "agent-a")
	tm := newTerm(e.clock.Now())
	e.l.term.Store(tm)
	e.clock.Advance(time.Minute)
	e.l.AgentReconnected("agent-a", e.clock.Now())
	if got := tm.activity.touched.drain(); !got["s-1"].Equal(e.clock.Now()) {
		t.Fatalf("activity after the return: %v, want s-1 at %v", got, e.clock.Now())
	}
}

// A heartbeat writes only news: a change of address, capacity, images,
// GPUs, quantum, folder hosts or status, or a replicated time 30 s old.
func TestAHeartbeatWritesOnlyNews(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := &state.Agent{ID: "a", Address: "10.0.0.1:6001", Status: state.AgentAlive, Capacity: slots.Slots{slots.CPU: 1000},
		Images: []api.Image{{Name: "x"}}, FolderHosts: []string{"h1"}, LastHeartbeatAt: now.Add(-10 * time.Second)}
	lost := *rec
	lost.Status = state.AgentLost
	disconnected := *rec
	disconnected.Status = state.AgentDisconnected
	cases := []struct {
		name  string
		rec   *state.Agent
		hb    api.AgentHeartbeat
		write bool
	}{
		{"the same report", rec, api.AgentHeartbeat{Address: rec.Address, Capacity: rec.Capacity, Images: rec.Images, FolderHosts: []string{"h1"}}, false},
		{"nothing reported", rec, api.AgentHeartbeat{}, false},
		{"a new address", rec, api.AgentHeartbeat{Address: "10.0.0.2:6001"}, true},
		{"new capacity", rec, api.AgentHeartbeat{Capacity: slots.Slots{slots.CPU: 2000}}, true},
		{"images gone", rec, api.AgentHeartbeat{Images: []api.Image{}}, true},
		{"a folder host more", rec, api.AgentHeartbeat{FolderHosts: []string{"h1", "h2"}}, true},
		{"a quantum", rec, api.AgentHeartbeat{GPUShareQuantum: 25}, true},
		{"back from LOST", &lost, api.AgentHeartbeat{}, true},
		{"back from DISCONNECTED", &disconnected, api.AgentHeartbeat{}, true},
	}
	for _, c := range cases {
		upd := heartbeatUpdate(c.rec, &c.hb, now)
		if (upd != nil) != c.write {
			t.Errorf("%s: update %+v, want a write: %v", c.name, upd, c.write)
		}
	}
	if upd := heartbeatUpdate(rec, &api.AgentHeartbeat{}, now.Add(20*time.Second)); upd == nil || !upd.LastHeartbeatAt.Equal(now.Add(20*time.Second)) {
		t.Errorf("30 s after the last write: %+v, want the time written", upd)
	}
}

// Keypair uses gathered during a period are written in one entry, and
// nothing when there were none.
func TestKeypairUsesAreWrittenTogether(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tm := newTerm(e.clock.Now())
	e.l.term.Store(tm)
	k := e.l.newKeypairTouch(tm)
	k.flush(context.Background())
	if n := e.c.count(fsm.MsgKeypairsTouch); n != 0 {
		t.Fatalf("%d entries without a use", n)
	}
	for range 3 {
		e.l.KeypairUsed("AK1")
		e.l.KeypairUsed("AK2")
	}
	k.flush(context.Background())
	if n := e.c.count(fsm.MsgKeypairsTouch); n != 1 {
		t.Fatalf("%d entries for six uses of two keypairs, want 1", n)
	}
}

// Busy CPU between two reports counts as activity; a trickle does not.
func TestBusyCPUIsActivity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := newActivity()
	t0 := e.clock.Now()
	report := func(busy, idle float64) []api.ContainerReport {
		return []api.ContainerReport{{ID: "busy-0", SessionID: "busy", Status: "running", CPUSeconds: busy},
			{ID: "idle-0", SessionID: "idle", Status: "running", CPUSeconds: idle}}
	}
	// Sessions asking one core each.
	e.bootstrap(t)
	for _, id := range []string{"busy", "idle"} {
		resp, err := e.c.Propose(context.Background(), fsm.SessionsCreate{Sessions: []state.Session{{ID: id, AccessKey: "AKADMIN",
			Owner: "admin@example.com", Image: "img", Type: api.SessionInteractive, Status: api.SessionPending,
			Requested: slots.Slots{slots.CPU: 1000, slots.Mem: 1 << 20}, ClusterSize: 1, CreatedAt: t0}}})
		if err != nil {
			t.Fatal(err)
		}
		if created, err := fsm.Value[[]fsm.SessionCreated](resp); err != nil || created[0].Err != nil {
			t.Fatalf("create session %s: %v %v", id, err, created)
		}
	}
	tx := e.c.Read()
	if err := a.noteCPU(tx, "agent", t0, report(0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := a.noteCPU(tx, "agent", t0.Add(10*time.Second), report(5, 0.1)); err != nil {
		t.Fatal(err)
	}
	seen := a.touched.drain()
	if _, ok := seen["busy"]; !ok || len(seen) != 1 {
		t.Errorf("activity %v, want the busy session only", seen)
	}
}
