package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/sched"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// reversedTies is the scheduler's view of the cluster with every tie-break
// reversed, injected where the scheduler takes its view (sched.Source):
// agents go by names that sort the other way round, and each agent's GPUs
// come in the opposite order. Wherever Place and the GPU allocation break a
// tie by the smallest agent id or the lowest GPU position, it now goes the
// other way.
type reversedTies struct{ src sched.Source }

// flip maps an agent id to one that sorts in reverse among ids of the
// same length; it is its own inverse.
func flip(id string) string {
	b := []byte(id)
	for i := range b {
		b[i] = 0xff - b[i]
	}
	return string(b)
}

func reverse(a *sched.Agent) *sched.Agent {
	if a == nil {
		return nil
	}
	r := *a
	r.ID = flip(a.ID)
	r.GPUs = slices.Clone(a.GPUs)
	slices.Reverse(r.GPUs)
	return &r
}

func (r reversedTies) Keypair(ak string) (*sched.Keypair, error) { return r.src.Keypair(ak) }

func (r reversedTies) Agent(id string) (*sched.Agent, error) {
	a, err := r.src.Agent(flip(id))
	return reverse(a), err
}

func (r reversedTies) Agents() ([]*sched.Agent, error) {
	as, err := r.src.Agents()
	out := make([]*sched.Agent, len(as))
	for i, a := range as {
		out[i] = reverse(a)
	}
	return out, err
}

// planner is a leader's scheduler: the plan it proposes from a state.
type planner func(t *testing.T, tx *state.Txn, at time.Time) Plan

// schedulerPlan runs the real scheduler over the state, its view wrapped
// by view (nil: as it is), with agent ids mapped back by unname.
func schedulerPlan(view func(sched.Source) sched.Source, unname func(string) string, opt sched.Options) planner {
	return func(t *testing.T, tx *state.Txn, at time.Time) Plan {
		t.Helper()
		var pending []sched.Request
		if err := tx.EachPending(func(s *state.Session) bool {
			pending = append(pending, sched.RequestOf(s))
			return true
		}); err != nil {
			t.Fatal(err)
		}
		ds, err := sched.Schedule(sched.NewCluster(view(sched.StateSource(tx))), pending, opt)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ds {
			for j, a := range ds[i].Agents {
				ds[i].Agents[j] = unname(a)
			}
		}
		return decisionsPlan(ds, at)
	}
}

var schedOpt = sched.Options{Order: sched.DRF, Strategy: sched.Dispersed}

func asIs(s sched.Source) sched.Source { return s }
func same(id string) string            { return id }

var (
	normalScheduler   = schedulerPlan(asIs, same, schedOpt)
	reversedScheduler = schedulerPlan(func(s sched.Source) sched.Source { return reversedTies{s} }, flip, schedOpt)
)

// replayKey is the keypair of the replay log, on a policy roomy enough
// that most sessions run and their agents and GPUs are the scheduler's
// choice.
const replayKey = "AKREPLAY00000000000"

// schedulerLog records a log as a leader writes it: a few hundred creates
// (a third asking for GPU shares or whole GPUs), plans made by the real
// scheduler from the state at that point (plans from an older state too,
// which the applier partly refuses), reports, terminations and agent
// updates. Four identical agents and identical GPUs leave the scheduler
// ties to break at every turn. The first plans are old-format (agents
// only), as an old leader wrote them before an upgrade.
func schedulerLog(t *testing.T, seed uint64, steps int) (log [][]byte, final []byte, stats map[string]int) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 17))
	f := newTestFSM()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	stats = map[string]int{}
	var index uint64
	write := func(c Command) *Response {
		e, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		index++
		log = append(log, e)
		return f.ApplyEntry(index, e)
	}
	for _, c := range testBootstrap(base) {
		write(c)
	}
	twelve := 12
	write(PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "replay", MaxContainersPerSession: 2,
		MaxConcurrentSessions: &twelve, TotalResourceSlots: slots.Limits{slots.CUDAShares: 1000}, CreatedAt: base}}})
	write(KeypairPut{Keypair: state.Keypair{AccessKey: replayKey, User: "admin@x.io", IsActive: true, ResourcePolicy: "replay", CreatedAt: base}})
	agents := []string{"g1", "g2", "g3", "g4"}
	for _, id := range agents {
		write(AgentPut{Agent: state.Agent{ID: id, Status: state.AgentAlive, Schedulable: true,
			Capacity:        slots.Slots{slots.CPU: 4000, slots.Mem: 32 << 30, slots.CUDADevice: 2, slots.CUDAShares: 200},
			GPUs:            []api.GPUDevice{{UUID: id + "-GPU-0", Shares: 100}, {UUID: id + "-GPU-1", Index: 1, Shares: 100}},
			GPUShareQuantum: 10, LastHeartbeatAt: base}})
	}
	var ids []string
	var old []*state.Store
	pick := func() string { return ids[rnd.IntN(len(ids))] }
	for step := range steps {
		at := base.Add(time.Duration(step) * time.Second)
		switch r := rnd.IntN(20); {
		case r < 7 || len(ids) == 0:
			id := fmt.Sprintf("s%03d", step)
			ids = append(ids, id)
			c := newSession(id, replayKey, []string{api.SessionBatch, api.SessionInteractive}[rnd.IntN(2)],
				int64(500*(1+rnd.IntN(4))), 1+rnd.IntN(2), at)
			switch rnd.IntN(6) {
			case 0, 1, 2:
				c.Session.Requested[slots.CUDAShares] = []int64{25, 50, 50, 100, 150, 200}[rnd.IntN(6)]
			case 3:
				c.Session.Requested[slots.CUDADevice] = 1 + rnd.Int64N(2)
			}
			write(c)
		case r < 11:
			p := normalScheduler(t, f.State().Read(), at)
			if step < steps/5 {
				// An old leader, before the upgrade: agents only.
				v1 := PlanV1{At: at, Waits: p.Waits}
				for _, pl := range p.Placements {
					v1.Placements = append(v1.Placements, PlacementV1{SessionID: pl.SessionID, Agents: agentsOf(pl)})
				}
				stats["old-format plans"]++
				write(v1)
				continue
			}
			res := write(p).Value.(*PlanResult)
			// The scheduler's predicates are at least as strict as the
			// applier's invariants: what it plans from the current
			// state is accepted whole.
			if len(res.Refused) > 0 {
				t.Fatalf("step %d: a plan made from the current state was refused: %+v", step, res.Refused)
			}
			stats["placed"] += len(res.Placed)
			for _, pl := range p.Placements {
				for _, c := range pl.Containers {
					if len(c.GPUs) > 0 {
						stats["containers with GPU slices"]++
					}
				}
			}
		case r < 13 && len(old) > 0:
			// A deposed leader's plan, made from an older state; or one
			// that crossed an agent being drained.
			p := normalScheduler(t, old[rnd.IntN(len(old))].Read(), at)
			if rnd.IntN(2) == 0 {
				p = normalScheduler(t, f.State().Read(), at)
				if len(p.Placements) > 0 {
					off := false
					write(AgentUpdate{ID: p.Placements[0].Containers[0].Agent, Schedulable: &off})
				}
			}
			stats["refused"] += len(write(p).Value.(*PlanResult).Refused)
		case r < 16:
			// News from the agent of a running session: its containers
			// there start, exit, or are gone once it is stopping.
			var occupying []*state.Session
			_ = f.State().Read().EachSession(func(s *state.Session) bool { return s.Status.Occupying() },
				func(s *state.Session) error { occupying = append(occupying, s); return nil })
			if len(occupying) == 0 {
				continue
			}
			s := occupying[rnd.IntN(len(occupying))]
			agent := s.Containers[rnd.IntN(len(s.Containers))].Agent
			status := []api.ContainerStatus{"created", "running", "running", "exited"}[rnd.IntN(4)]
			if s.Status == api.SessionTerminating {
				status = "gone"
			}
			var reports []ContainerReport
			for i, c := range s.Containers {
				if c.Agent == agent {
					code := rnd.IntN(2)
					reports = append(reports, ContainerReport{SessionID: s.ID, Index: i, Status: status, ExitCode: &code})
				}
			}
			write(SessionsReport{At: at, Agent: agent, Reports: reports})
		case r < 18:
			id := pick()
			var occupying []string
			_ = f.State().Read().EachSession(func(s *state.Session) bool { return s.Status.Occupying() },
				func(s *state.Session) error { occupying = append(occupying, s.ID); return nil })
			if len(occupying) > 0 && rnd.IntN(4) > 0 {
				id = occupying[rnd.IntN(len(occupying))]
			}
			write(SessionTerminate{SessionID: id, At: at, Reason: "user-request"})
		default:
			id := agents[rnd.IntN(len(agents))]
			switch rnd.IntN(3) {
			case 0:
				write(AgentsLost{At: at, Agents: []LostAgent{{ID: id, LastSeen: at}}})
			default:
				alive, schedulable := state.AgentAlive, rnd.IntN(3) > 0
				write(AgentUpdate{ID: id, Status: &alive, Schedulable: &schedulable, LastHeartbeatAt: &at})
			}
		}
		if rnd.IntN(5) == 0 {
			old = append(old, f.State().Snapshot())
		}
	}
	return log, snapshotBytes(t, f), stats
}

func agentsOf(p Placement) []string {
	out := make([]string, len(p.Containers))
	for i, c := range p.Containers {
		out[i] = c.Agent
	}
	return out
}

func snapshotBytes(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &bufferSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// replay applies the log to a fresh FSM. A manager's own scheduler, if
// given, is asked before each plan entry what it would have proposed from
// the state at that point — as a newer (or older) manager would, whose
// scheduler breaks ties otherwise — and the entry is applied all the
// same. It returns the snapshot and how many plans the scheduler would
// have made otherwise.
func replay(t *testing.T, log [][]byte, own planner) (snapshot []byte, disagreed int) {
	t.Helper()
	f := newTestFSM()
	for i, e := range log {
		if own != nil && MsgType(e[0]) == MsgPlan {
			var recorded Plan
			if err := json.Unmarshal(e[1:], &recorded); err != nil {
				t.Fatal(err)
			}
			mine := own(t, f.State().Read(), recorded.At)
			a, _ := json.Marshal(recorded.Placements)
			b, _ := json.Marshal(mine.Placements)
			if !bytes.Equal(a, b) {
				disagreed++
			}
		}
		f.ApplyEntry(uint64(i+1), e)
	}
	return snapshotBytes(t, f), disagreed
}

// TestReplayGivesTheSameStateWhateverTheScheduler is the point of carrying
// the whole decision in the plan: a log the real scheduler wrote, replayed
// into two fresh managers — one of them running a scheduler with every
// tie-break reversed, which would have placed differently — gives
// byte-identical snapshots, equal to the state of the manager that wrote
// it. Replay never consults a scheduler, so no change to one (a tie-break,
// a packing rule, a message) can fork replicated state during a rolling
// upgrade or a restore. The control shows the comparison has teeth: a
// manager that decided placements itself, as the applier did before, with
// the reversed scheduler ends in a different state.
func TestReplayGivesTheSameStateWhateverTheScheduler(t *testing.T) {
	log, written, stats := schedulerLog(t, 5, 400)
	t.Logf("%d entries: %v", len(log), stats)
	for _, what := range []string{"old-format plans", "placed", "containers with GPU slices", "refused"} {
		if stats[what] == 0 {
			t.Fatalf("the log has no %s: the test proves less than it says (%v)", what, stats)
		}
	}
	a, _ := replay(t, log, nil)
	b, disagreed := replay(t, log, reversedScheduler)
	if disagreed == 0 {
		t.Fatal("the reversed scheduler would have made every plan the same: the test proves nothing")
	}
	if !bytes.Equal(a, written) {
		t.Fatal("replaying the log does not give the state of the manager that wrote it")
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("a manager whose scheduler breaks ties the other way replays to a different state (%d plans it would have made otherwise)", disagreed)
	}
	t.Logf("the reversed scheduler disagreed with %d plans; snapshots of %d bytes are identical", disagreed, len(a))

	// Control: the same log, but each plan decided at apply time by the
	// reversed scheduler, as an applier that runs a scheduler would.
	c := newTestFSM()
	for i, e := range log {
		if MsgType(e[0]) == MsgPlan {
			var recorded Plan
			if err := json.Unmarshal(e[1:], &recorded); err != nil {
				t.Fatal(err)
			}
			var err error
			if e, err = Encode(reversedScheduler(t, c.State().Read(), recorded.At)); err != nil {
				t.Fatal(err)
			}
		}
		c.ApplyEntry(uint64(i+1), e)
	}
	if bytes.Equal(snapshotBytes(t, c), a) {
		t.Fatal("deciding with reversed tie-breaks at apply time gives the same state: the comparison above cannot fail")
	}
}

// The reversal really reverses: on one free agent pair and one free GPU
// pair, the reversed scheduler picks the other of each.
func TestReversedTiesPickTheOtherAgentAndGPU(t *testing.T) {
	log, _, _ := schedulerLog(t, 1, 0)
	f := newTestFSM()
	for i, e := range log {
		f.ApplyEntry(uint64(i+1), e)
	}
	var index = uint64(len(log))
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := newSession("one", replayKey, api.SessionBatch, 500, 1, base)
	c.Session.Requested[slots.CUDAShares] = 50
	mustApply(t, f, &index, c)
	got := map[string]string{}
	for name, p := range map[string]planner{"normal": normalScheduler, "reversed": reversedScheduler} {
		plan := p(t, f.State().Read(), base)
		if len(plan.Placements) != 1 {
			t.Fatalf("%s: %+v", name, plan)
		}
		pc := plan.Placements[0].Containers[0]
		got[name] = pc.Agent + " " + pc.GPUs[0].UUID
	}
	want := map[string]string{"normal": "g1 g1-GPU-0", "reversed": "g4 g4-GPU-1"}
	if !maps.Equal(got, want) {
		t.Errorf("placements %v, want %v", got, want)
	}
}
