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
// agent silent past its timeout is not judged LOST by it. The control,
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
				if n := e.c.count(fsm.MsgAgentsLost); n != 0 {
					t.Errorf("a leader that stepped down judged agents: %d AgentsLost", n)
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
			// timeout later, the agent is LOST.
			eventually(t, "ready", e.l.Ready)
			e.clock.Advance(2 * time.Second)
			eventually(t, "agent judged LOST", func() bool {
				ag, _ := e.c.Read().Agent("agent-a")
				return ag.Status == state.AgentLost
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
	eventually(t, "ready after the third setup", e.l.Ready)
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

// An agent silent past the timeout is LOST; one that heartbeats is not; the
// clock of an agent not heard from starts with the leadership, so a new
// leader gives every agent a full timeout.
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
	v.markLost(context.Background())
	if ag, _ := e.c.Read().Agent("agent-silent"); ag.Status != state.AgentLost {
		t.Errorf("silent agent is %s", ag.Status)
	}
	if ag, _ := e.c.Read().Agent("agent-beating"); ag.Status != state.AgentAlive {
		t.Errorf("beating agent is %s", ag.Status)
	}
	if got := counterValue(t, e.l.metrics.lost); got != 1 {
		t.Errorf("berth_agents_lost_total %v, want 1", got)
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
