package fsm

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/sched"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// TestPlansNeverOverAdmit applies random interleavings of creates, plans
// (hand-made ones with stale, duplicate and wrong placements, and the real
// scheduler's made from old snapshots), reports, terminations, touches and
// agents lost and back, and checks after every entry that no keypair is
// over max_concurrent_sessions or its slot totals, no agent over its
// capacity, and that the indexed occupancy equals a full recompute.
func TestPlansNeverOverAdmit(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runAdmissionChaos(t, seed, 400) })
	}
}

type chaos struct {
	t      *testing.T
	rnd    *rand.Rand
	f      *FSM
	index  *uint64
	base   time.Time
	ids    []string
	old    []*state.Store // snapshots the stale plans are made from
	placed int
}

func runAdmissionChaos(t *testing.T, seed uint64, steps int) {
	c := newChaos(t, seed)
	f, index, base := c.f, c.index, c.base
	for step := range steps {
		at := base.Add(time.Duration(step) * time.Second)
		cmd := c.next(step, at)
		apply(t, f, index, cmd) // refusals are expected; only the invariants matter
		checkAdmission(t, f, fmt.Sprintf("step %d (%T)", step, cmd))
		if c.rnd.IntN(8) == 0 {
			c.old = append(c.old, f.State().Snapshot())
		}
	}
	if c.placed == 0 {
		t.Fatal("no plan placed anything: the test proves nothing")
	}
}

// newChaos is the chaos FSM: the sessions FSM plus policy "wide" (12 GiB,
// 3 containers, 3 at once), its keypair AKWIDE, and a3 with two GPUs.
func newChaos(t *testing.T, seed uint64) *chaos {
	f, index, base := sessionFSM(t)
	three := 3
	mustApply(t, f, index, PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "wide",
		TotalResourceSlots: slots.Limits{slots.Mem: 12 << 30}, MaxContainersPerSession: 3, MaxConcurrentSessions: &three}}})
	mustApply(t, f, index, KeypairPut{Keypair: state.Keypair{AccessKey: "AKWIDE", User: "admin@x.io", IsActive: true, ResourcePolicy: "wide"}})
	mustApply(t, f, index, AgentPut{Agent: state.Agent{ID: "a3", Status: state.AgentAlive, Schedulable: true,
		Capacity: slots.Slots{slots.CPU: 8000, slots.Mem: 16 << 30, slots.CUDADevice: 2, slots.CUDAShares: 200},
		GPUs:     []api.GPUDevice{{UUID: "GPU-a", Shares: 100}, {UUID: "GPU-b", Index: 1, Shares: 100}}, GPUShareQuantum: 10}})
	return &chaos{t: t, rnd: rand.New(rand.NewPCG(seed, 99)), f: f, index: index, base: base}
}

func (c *chaos) pick() string {
	if len(c.ids) == 0 || c.rnd.IntN(20) == 0 {
		return "ghost"
	}
	return c.ids[c.rnd.IntN(len(c.ids))]
}

func (c *chaos) agent() string { return []string{"a1", "a2", "a3", "a3", "nowhere"}[c.rnd.IntN(5)] }

func (c *chaos) next(step int, at time.Time) Command {
	switch r := c.rnd.IntN(20); {
	case r < 6:
		id := fmt.Sprintf("s%d", step)
		c.ids = append(c.ids, id)
		ak := []string{sessionKey, "AKWIDE", "AKWIDE"}[c.rnd.IntN(3)]
		cmd := newSession(id, ak, []string{api.SessionBatch, api.SessionInteractive}[c.rnd.IntN(2)], int64(500*(1+c.rnd.IntN(6))), 1+c.rnd.IntN(3), at)
		cmd.Session.Requested[slots.Mem] = int64(c.rnd.IntN(5)) << 30
		switch c.rnd.IntN(4) {
		case 0:
			cmd.Session.Requested[slots.CUDAShares] = 1 + c.rnd.Int64N(200)
		case 1:
			cmd.Session.Requested[slots.CUDADevice] = 1 + c.rnd.Int64N(2)
		}
		return cmd
	case r < 9:
		return c.handPlan(at)
	case r < 12:
		return c.stalePlan(at)
	case r < 16:
		return c.report(at)
	case r < 18:
		return SessionTerminate{SessionID: c.pick(), At: at, Reason: "user-request"}
	case r < 19:
		return SessionsTouch{LastActivity: map[string]time.Time{c.pick(): at}}
	default:
		id := c.agent()
		if c.rnd.IntN(2) == 0 {
			return AgentsLost{At: at, Agents: []LostAgent{{ID: id, LastSeen: at}}}
		}
		status, sched := state.AgentAlive, c.rnd.IntN(3) > 0
		return AgentUpdate{ID: id, Status: &status, Schedulable: &sched, LastHeartbeatAt: &at}
	}
}

// handPlan places random sessions (PENDING or not, known or not) on random
// agents, sometimes with the wrong number of them, the same session twice,
// and random GPU slices: on GPUs the agent has or not, fractions and whole
// GPUs, too much or too little. Some are old-format plans (agents only).
func (c *chaos) handPlan(at time.Time) Command {
	old := c.rnd.IntN(4) == 0
	p, v1 := Plan{At: at}, PlanV1{At: at}
	for range 1 + c.rnd.IntN(5) {
		id := c.pick()
		n := 1 + c.rnd.IntN(3)
		var agents []string
		var cs []PlacedContainer
		for range n {
			a := c.agent()
			agents = append(agents, a)
			cs = append(cs, PlacedContainer{Agent: a, GPUs: c.slices()})
		}
		for range 1 + c.rnd.IntN(4)/3 {
			p.Placements = append(p.Placements, Placement{SessionID: id, Containers: cs})
			v1.Placements = append(v1.Placements, PlacementV1{SessionID: id, Agents: agents})
		}
	}
	p.Waits = []Wait{{SessionID: c.pick(), Info: "waiting"}}
	v1.Waits = p.Waits
	if old {
		return v1
	}
	return p
}

// slices are random GPU slices of a3's GPUs, or of none.
func (c *chaos) slices() []state.GPUSlice {
	uuids := []string{"GPU-a", "GPU-b", "GPU-b", "GPU-x"}
	var out []state.GPUSlice
	for range c.rnd.IntN(3) {
		if c.rnd.IntN(3) == 0 {
			out = append(out, state.GPUSlice{UUID: uuids[c.rnd.IntN(len(uuids))], Share: 100, Whole: true})
		} else {
			out = append(out, state.GPUSlice{UUID: uuids[c.rnd.IntN(len(uuids))], Share: 10 * (1 + c.rnd.Int64N(10))})
		}
	}
	return out
}

// stalePlan is what the real scheduler would have proposed from an old
// snapshot: a deposed leader's plan, or one that crossed other entries.
// Some are old-format (agents only: the applier picks the slices).
func (c *chaos) stalePlan(at time.Time) Command {
	st := c.f.State()
	if len(c.old) > 0 && c.rnd.IntN(3) > 0 {
		st = c.old[c.rnd.IntN(len(c.old))]
	}
	tx := st.Read()
	var pending []sched.Request
	if err := tx.EachPending(func(s *state.Session) bool {
		pending = append(pending, sched.RequestOf(s))
		return true
	}); err != nil {
		c.t.Fatal(err)
	}
	opt := sched.Options{Order: sched.Order(1 + c.rnd.IntN(2)), Strategy: sched.Strategy(1 + c.rnd.IntN(2))}
	ds, err := sched.Schedule(sched.NewCluster(sched.StateSource(tx)), pending, opt)
	if err != nil {
		c.t.Fatal(err)
	}
	p, v1 := decisionsPlan(ds, at), PlanV1{At: at}
	for _, d := range ds {
		if d.Failure == nil {
			v1.Placements = append(v1.Placements, PlacementV1{SessionID: d.Request.SessionID, Agents: d.Agents})
			c.placed++
		}
	}
	if c.rnd.IntN(4) == 0 {
		v1.Waits = p.Waits
		return v1
	}
	return p
}

// decisionsPlan is the plan the leader proposes for a scheduling pass, as
// manager/server builds it: every placement whole, every wait.
func decisionsPlan(ds []sched.Decision, at time.Time) Plan {
	p := Plan{Version: PlanVersion, At: at}
	for _, d := range ds {
		if d.Failure != nil {
			p.Waits = append(p.Waits, Wait{SessionID: d.Request.SessionID, Info: d.Failure.Reason})
			continue
		}
		pl := Placement{SessionID: d.Request.SessionID}
		for i, a := range d.Agents {
			pl.Containers = append(pl.Containers, PlacedContainer{Agent: a, GPUs: d.GPUs[i]})
		}
		p.Placements = append(p.Placements, pl)
	}
	return p
}

func (c *chaos) report(at time.Time) SessionsReport {
	id := c.pick()
	s, _ := c.f.State().Read().Session(id)
	agent, index := c.agent(), c.rnd.IntN(3)
	if s != nil && len(s.Containers) > 0 && c.rnd.IntN(5) > 0 {
		index = c.rnd.IntN(len(s.Containers))
		agent = s.Containers[index].Agent
	}
	statuses := []api.ContainerStatus{"created", "running", "running", "exited", "failed", "gone"}
	code := c.rnd.IntN(3)
	return SessionsReport{At: at, Agent: agent, Reports: []ContainerReport{
		{SessionID: id, Index: index, Status: statuses[c.rnd.IntN(len(statuses))], ExitCode: &code}}}
}

// checkAdmission recomputes every occupancy from all session records and
// holds it against the limits and against the indexed helpers.
func checkAdmission(t *testing.T, f *FSM, when string) {
	t.Helper()
	tx := f.State().Read()
	byKey := map[string]slots.Slots{}
	count := map[string]int{}
	onAgent := map[string]slots.Slots{}
	err := tx.EachSession(nil, func(s *state.Session) error {
		if last := s.StatusHistory[len(s.StatusHistory)-1].Status; last != s.Status {
			t.Fatalf("%s: %s is %s but its history ends %s", when, s.ID, s.Status, last)
		}
		if s.Status.Ended() != (s.TerminatedAt != nil) {
			t.Fatalf("%s: %s is %s with terminated_at %v", when, s.ID, s.Status, s.TerminatedAt)
		}
		if !s.Status.Occupying() {
			return nil
		}
		if len(s.Containers) != s.ClusterSize {
			t.Fatalf("%s: %s holds %d containers of %d", when, s.ID, len(s.Containers), s.ClusterSize)
		}
		count[s.AccessKey]++
		byKey[s.AccessKey] = byKey[s.AccessKey].Add(s.Holds())
		for _, ct := range s.Containers {
			onAgent[ct.Agent] = onAgent[ct.Agent].Add(ct.Slots)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ak := range []string{sessionKey, "AKWIDE", "AKADMIN000000000000"} {
		k, _ := tx.Keypair(ak)
		p, _ := tx.ResourcePolicy(k.ResourcePolicy)
		if p.MaxConcurrentSessions != nil && count[ak] > *p.MaxConcurrentSessions {
			t.Fatalf("%s: %s occupies %d sessions, max %d", when, ak, count[ak], *p.MaxConcurrentSessions)
		}
		if ex := byKey[ak].Exceeding(p.TotalResourceSlots); len(ex) > 0 {
			t.Fatalf("%s: %s over its policy: %v", when, ak, ex)
		}
		if got, _ := tx.OccupiedByKeypair(ak); !sameSlots(got, byKey[ak]) {
			t.Fatalf("%s: %s indexed %v, recomputed %v", when, ak, got, byKey[ak])
		}
		if got, _ := tx.OccupyingSessions(ak); got != count[ak] {
			t.Fatalf("%s: %s indexed %d sessions, recomputed %d", when, ak, got, count[ak])
		}
	}
	checkUsage(t, tx, when)
	checkGPUs(t, tx, when)
	agents, _ := tx.Agents()
	for _, a := range agents {
		if !onAgent[a.ID].FitsIn(a.Capacity) {
			t.Fatalf("%s: agent %s holds %v over its capacity %v", when, a.ID, onAgent[a.ID], a.Capacity)
		}
		if got, _ := tx.OccupiedOnAgent(a.ID); !sameSlots(got, onAgent[a.ID]) {
			t.Fatalf("%s: agent %s indexed %v, recomputed %v", when, a.ID, got, onAgent[a.ID])
		}
	}
}

// checkUsage holds the incrementally kept usage rows against a recompute
// from the session records.
func checkUsage(t *testing.T, tx *state.Txn, when string) {
	t.Helper()
	rows, err := tx.Usages()
	if err != nil {
		t.Fatal(err)
	}
	want, err := tx.RecomputeUsage()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want) {
		t.Fatalf("%s: %d usage rows, recomputed %d", when, len(rows), len(want))
	}
	for _, u := range rows {
		w := want[u.Key]
		if w == nil || w.Sessions != u.Sessions || !sameSlots(w.Slots, u.Slots) {
			t.Fatalf("%s: usage %s is %+v, recomputed %+v", when, u.Key, u, w)
		}
	}
}

func sameSlots(a, b slots.Slots) bool {
	return a.Sub(b).String() == "" && b.Sub(a).String() == ""
}

// checkGPUs recomputes every GPU's slices from the session records: no GPU
// holds more than it offers, a GPU given whole holds nothing else, every
// slice is on a GPU of its container's agent, and a container's
// cuda.shares is what its slices hold.
func checkGPUs(t *testing.T, tx *state.Txn, when string) {
	t.Helper()
	type gpuKey struct{ agent, uuid string }
	held, whole, slices := map[gpuKey]int64{}, map[gpuKey]int{}, map[gpuKey]int{}
	err := tx.EachSession(func(s *state.Session) bool { return s.Status.Occupying() }, func(s *state.Session) error {
		for _, ct := range s.Containers {
			sum := int64(0)
			for _, g := range ct.GPUs {
				k := gpuKey{ct.Agent, g.UUID}
				held[k] += g.Share
				slices[k]++
				if g.Whole {
					whole[k]++
				}
				// Whole GPUs given for cuda.device are not cuda.shares;
				// for cuda.shares (split into whole GPUs or not) every
				// slice is.
				if !g.Whole || s.Requested[slots.CUDAShares] > 0 {
					sum += g.Share
				}
			}
			if wantsGPU := s.Requested[slots.CUDADevice] + s.Requested[slots.CUDAShares]; wantsGPU > 0 && len(ct.GPUs) == 0 {
				t.Fatalf("%s: %s container %d asks for GPUs and holds no slice", when, s.ID, ct.Index)
			}
			if sum != ct.Slots[slots.CUDAShares] {
				t.Fatalf("%s: %s container %d holds cuda.shares %d, its slices %d", when, s.ID, ct.Index, ct.Slots[slots.CUDAShares], sum)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	agents, _ := tx.Agents()
	offered := map[gpuKey]int64{}
	for _, a := range agents {
		for _, g := range a.GPUs {
			offered[gpuKey{a.ID, g.UUID}] = g.Shares
		}
	}
	for k, h := range held {
		if shares, ok := offered[k]; !ok || h > shares {
			t.Fatalf("%s: GPU %s of %s holds %d of %d", when, k.uuid, k.agent, h, shares)
		}
		if whole[k] > 0 && slices[k] > 1 {
			t.Fatalf("%s: GPU %s of %s is given whole and shared (%d slices)", when, k.uuid, k.agent, slices[k])
		}
		if got, _ := tx.GPUUsage(k.agent); got[k.uuid] != h {
			t.Fatalf("%s: GPU %s of %s indexed %d, recomputed %d", when, k.uuid, k.agent, got[k.uuid], h)
		}
	}
}
