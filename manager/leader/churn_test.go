package leader

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// The churn of issue 22: sessions created, placed, run and finished
// through the real FSM, batch after batch of simulated time, with the
// leader's collection duty removing what ended more than the retention
// ago. The state must stay as large as what the retention holds, whatever
// ran before.

// churn is one run's setting.
type churn struct {
	sessions  int           // in all
	batch     int           // sessions per batch (one create, plan and two report entries)
	keypairs  int           // the batches' sessions go round these
	every     time.Duration // simulated time between batches
	lifetime  time.Duration // of each session
	retention time.Duration
}

// churnEnv is a leader environment with the keypairs and agents of a
// churn.
type churnEnv struct {
	*env
	cfg churn
	n   int
	kps []string
}

func newChurn(t testing.TB, c churn) *churnEnv {
	e := &env{c: newTestCluster(), node: newTestNode(), clock: &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}}
	e.l = New(Config{Cluster: e.c, Node: e.node, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: e.clock.Now,
		SessionRetention: c.retention})
	ce := &churnEnv{env: e, cfg: c}
	apply := func(cmd fsm.Command) {
		if r, err := e.c.Propose(context.Background(), cmd); err != nil || r.Err != nil {
			t.Fatalf("%T: %v %v", cmd, err, r.Err)
		}
	}
	now := e.clock.Now()
	apply(fsm.Bootstrap{
		Domain:        state.Domain{Name: "default", IsActive: true, CreatedAt: now},
		Group:         state.Group{Domain: "default", Name: "default", IsActive: true, CreatedAt: now},
		Policy:        state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "default", MaxContainersPerSession: 1}},
		Admin:         state.User{Email: "admin@example.com", Username: "admin", Role: api.RoleSuperadmin, Status: api.StatusActive, Domain: "default", CreatedAt: now},
		AdminKeypair:  state.Keypair{AccessKey: "AKADMIN", SecretKey: "s", User: "admin@example.com", IsActive: true, IsAdmin: true, ResourcePolicy: "default", CreatedAt: now},
		ClusterSecret: "secret",
	})
	for i := range c.keypairs {
		email := fmt.Sprintf("user%04d@example.com", i)
		ak := fmt.Sprintf("AKCHURN%012d", i)
		apply(fsm.UserCreate{User: state.User{Email: email, Username: fmt.Sprintf("user%04d", i), Role: api.RoleUser, Status: api.StatusActive,
			Domain: "default", Groups: []string{"default"}, CreatedAt: now},
			Keypair: state.Keypair{AccessKey: ak, SecretKey: "k", User: email, IsActive: true, ResourcePolicy: "default", CreatedAt: now}})
		ce.kps = append(ce.kps, ak)
	}
	for i := range 10 {
		apply(fsm.AgentPut{Agent: state.Agent{ID: fmt.Sprintf("agent-%02d", i), Status: state.AgentAlive, Schedulable: true,
			Capacity: slots.Slots{slots.CPU: 1 << 30, slots.Mem: 1 << 50}, LastHeartbeatAt: now}})
	}
	return ce
}

// batch runs one batch of sessions through their whole life, then lets
// the collection duty do one round at the batch's end.
func (ce *churnEnv) batch(t testing.TB) {
	ctx := context.Background()
	start := ce.clock.Now()
	create := fsm.SessionsCreate{}
	plan := fsm.Plan{Version: fsm.PlanVersion, At: start}
	agent := fmt.Sprintf("agent-%02d", (ce.n/ce.cfg.batch)%10)
	running := fsm.SessionsReport{At: start, Agent: agent}
	done := fsm.SessionsReport{At: start.Add(ce.cfg.lifetime), Agent: agent}
	code := 0
	for range ce.cfg.batch {
		id := "s-" + strconv.FormatInt(int64(1e12+ce.n), 36)
		create.Sessions = append(create.Sessions, state.Session{ID: id, Name: "job", AccessKey: ce.kps[ce.n%len(ce.kps)], Image: "berth/base:latest",
			Type: api.SessionBatch, ClusterSize: 1, Requested: slots.Slots{slots.CPU: 500, slots.Mem: 1 << 30}, CreatedAt: start,
			Command: []string{"python", "train.py"}})
		plan.Placements = append(plan.Placements, fsm.Placement{SessionID: id, Containers: []fsm.PlacedContainer{{Agent: agent}}})
		running.Reports = append(running.Reports, fsm.ContainerReport{SessionID: id, Status: api.ContainerRunning})
		done.Reports = append(done.Reports, fsm.ContainerReport{SessionID: id, Status: api.ContainerExited, ExitCode: &code})
		ce.n++
	}
	for _, cmd := range []fsm.Command{create, plan, running, done} {
		if r, err := ce.c.Propose(ctx, cmd); err != nil || r.Err != nil {
			t.Fatalf("%T: %v %v", cmd, err, r.Err)
		}
	}
	ce.clock.Advance(ce.cfg.every)
	ce.l.newCollect().round(ctx)
}

// counts is what the state holds now.
type churnCounts struct {
	sessions, marks, rows int
	snapshot              int64
}

func (ce *churnEnv) counts(t testing.TB) churnCounts {
	tx := ce.c.Read()
	var out churnCounts
	_ = tx.EachSession(nil, func(*state.Session) error { out.sessions++; return nil })
	_ = tx.EachCollected(func(*state.CollectedSession) error { out.marks++; return nil })
	_ = tx.EachUsageDay("0000-00-00", "9999-99-99", func(*state.UsageDay) error { out.rows++; return nil })
	snap, err := ce.c.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &countingSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	out.snapshot = sink.n
	return out
}

type countingSink struct{ n int64 }

func (s *countingSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return len(p), nil }
func (s *countingSink) Close() error                { return nil }
func (s *countingSink) ID() string                  { return "count" }
func (s *countingSink) Cancel() error               { return nil }

var _ io.Writer = (*countingSink)(nil)

func heapNow() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc)
}

// TestChurnStateIsBoundedByTheRetention runs 20,000 sessions through 2.5
// retentions: once the first retention has passed, what the state holds
// (sessions, marks of collected ones, snapshot bytes) stays put while
// sessions keep coming, and only the usage rows grow, one per day and
// keypair.
func TestChurnStateIsBoundedByTheRetention(t *testing.T) {
	t.Parallel()
	c := churn{sessions: 20000, batch: 100, keypairs: 20, every: 4 * time.Minute, lifetime: 2 * time.Minute, retention: 5 * time.Hour}
	ce := newChurn(t, c)
	batches := c.sessions / c.batch
	perRetention := int(c.retention / c.every) // batches
	var at []churnCounts
	for b := 1; b <= batches; b++ {
		ce.batch(t)
		if b == 2*perRetention || b == batches {
			at = append(at, ce.counts(t))
		}
	}
	held := (perRetention + 1) * c.batch
	for i, got := range at {
		if got.sessions > held+c.batch || got.marks > held+c.batch {
			t.Errorf("checkpoint %d holds %d sessions and %d marks, more than the retention's %d (+ a batch)", i, got.sessions, got.marks, held)
		}
	}
	if grew := float64(at[1].snapshot) / float64(at[0].snapshot); grew > 1.1 {
		t.Errorf("the snapshot grew from %d to %d bytes while the retention held the same", at[0].snapshot, at[1].snapshot)
	}
	// Every session ran 2 minutes on 0.5 core: the usage holds them all,
	// collected or not.
	totals, err := ce.c.Read().UsageTotals("0000-00-00", "9999-99-99", ce.clock.Now(), func(string, string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	var cpu, started, finished int64
	for _, u := range totals {
		cpu += u.Alloc[0]
		started += u.Started
		finished += u.Finished
	}
	if want := int64(c.sessions) * 500 * 120; cpu != want || started != int64(c.sessions) || finished != int64(c.sessions) {
		t.Errorf("usage holds %d millicore-seconds, %d started, %d finished; want %d, %d, %d", cpu, started, finished, want, c.sessions, c.sessions)
	}
}

// BenchmarkSessionChurn is the churn of issue 22 at full size: 1,000,000
// sessions (BERTH_CHURN_SESSIONS), 100 per batch every 4 simulated minutes
// (27.8 simulated days), 100 keypairs, a retention of one day. It reports
// the live heap and the snapshot at a quarter of the run and at its end,
// what is held then, and what each held session, each mark of a collected
// one and each (day, keypair) usage row costs.
func BenchmarkSessionChurn(b *testing.B) {
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BERTH_CHURN_SESSIONS")); err == nil && v > 0 {
		total = v
	}
	c := churn{sessions: total, batch: 100, keypairs: 100, every: 4 * time.Minute, lifetime: 2 * time.Minute, retention: 24 * time.Hour}
	for range b.N {
		ce := newChurn(b, c)
		base := heapNow()
		batches := c.sessions / c.batch
		var quarter churnCounts
		var quarterHeap float64
		startWall := time.Now()
		for i := 1; i <= batches; i++ {
			ce.batch(b)
			if i == batches/4 {
				quarterHeap, quarter = heapNow(), ce.counts(b)
			}
		}
		elapsed := time.Since(startWall)
		endHeap, end := heapNow(), ce.counts(b)
		// What each part costs: forget the marks, then collect and forget
		// every session still held; what is left is the usage rows.
		ctx := context.Background()
		far := ce.clock.Now().Add(1000 * time.Hour)
		var marks []string
		_ = ce.c.Read().EachCollected(func(m *state.CollectedSession) error { marks = append(marks, m.ID); return nil })
		forget(b, ce, marks, far)
		noMarks := heapNow()
		for {
			next, err := collectable(ce.c.Read(), far, far, fsm.MaxCollectBatch)
			if err != nil {
				b.Fatal(err)
			}
			if len(next.Sessions) == 0 && len(next.Forget) == 0 {
				break
			}
			if r, err := ce.c.Propose(ctx, next); err != nil || r.Err != nil {
				b.Fatal(err, r.Err)
			}
		}
		rowsOnly := heapNow()
		b.ReportMetric(float64(elapsed.Microseconds())/float64(c.sessions), "µs/session")
		b.ReportMetric((quarterHeap-base)/(1<<20), "MiB-heap-at-25%")
		b.ReportMetric((endHeap-base)/(1<<20), "MiB-heap-at-end")
		b.ReportMetric(float64(quarter.snapshot)/(1<<20), "MiB-snapshot-at-25%")
		b.ReportMetric(float64(end.snapshot)/(1<<20), "MiB-snapshot-at-end")
		b.ReportMetric(float64(end.sessions), "held-sessions")
		b.ReportMetric(float64(end.marks), "marks")
		b.ReportMetric(float64(end.rows), "usage-rows")
		b.ReportMetric((endHeap-noMarks)/float64(end.marks), "B/mark")
		b.ReportMetric((noMarks-rowsOnly)/float64(end.sessions), "B/held-session")
		b.ReportMetric((rowsOnly-base)/float64(end.rows), "B/usage-row")
		runtime.KeepAlive(ce)
	}
}

// forget proposes the forgetting of the marks, a batch at a time.
func forget(b *testing.B, ce *churnEnv, ids []string, before time.Time) {
	for start := 0; start < len(ids); start += fsm.MaxCollectBatch {
		cmd := fsm.SessionsCollect{At: before, ForgetBefore: before, Forget: ids[start:min(len(ids), start+fsm.MaxCollectBatch)]}
		if r, err := ce.c.Propose(context.Background(), cmd); err != nil || r.Err != nil {
			b.Fatal(err, r.Err)
		}
	}
}
