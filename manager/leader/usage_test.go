package leader

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/shared/api"
)

// runSessions creates, places and runs n sessions on agent-a.
func (e *env) runSessions(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		e.createSession(t, id)
	}
	if _, err := e.l.newScheduler().pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		e.c.must(t, fsm.SessionsReport{At: e.clock.Now(), Agent: e.agentOf(t, id), Reports: []fsm.ContainerReport{{SessionID: id, Index: 0, Status: api.ContainerRunning}}})
	}
}

func (e *env) agentOf(t *testing.T, id string) string {
	t.Helper()
	s, _ := e.c.Read().Session(id)
	if s == nil || len(s.Containers) == 0 {
		t.Fatalf("session %s was not placed", id)
	}
	return s.Containers[0].Agent
}

func (e *env) endSession(t *testing.T, id string) {
	t.Helper()
	code := 0
	e.c.must(t, fsm.SessionsReport{At: e.clock.Now(), Agent: e.agentOf(t, id), Reports: []fsm.ContainerReport{{SessionID: id, Index: 0, Status: api.ContainerExited, ExitCode: &code}}})
}

// A collection round removes, in batches, the sessions that ended more
// than the retention ago and nothing else, and a later round forgets their
// marks once they are older than the retention too.
func TestCollectionRemovesWhatEndedBeforeTheRetentionInBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.SessionRetention = time.Hour; c.CollectBatch = 2 })
	e.bootstrap(t)
	e.aliveAgent(t, "agent-a") // 4 cores
	e.aliveAgent(t, "agent-b")
	old := []string{"s-1", "s-2", "s-3", "s-4", "s-5"}
	e.runSessions(t, append(old, "s-recent", "s-running")...)
	for _, id := range old {
		e.endSession(t, id)
	}
	e.clock.Advance(50 * time.Minute)
	e.endSession(t, "s-recent")
	e.clock.Advance(20 * time.Minute) // old ones ended 70 min ago, s-recent 20 min ago
	e.l.newCollect().round(context.Background())
	if n := e.c.count(fsm.MsgSessionsCollect); n != 3 {
		t.Errorf("%d collection entries for 5 sessions in batches of 2, want 3", n)
	}
	tx := e.c.Read()
	for _, id := range old {
		if s, _ := tx.Session(id); s != nil {
			t.Errorf("%s is still there", id)
		}
		if m, _ := tx.CollectedSession(id); m == nil {
			t.Errorf("%s left no mark", id)
		}
	}
	for _, id := range []string{"s-recent", "s-running"} {
		if s, _ := tx.Session(id); s == nil {
			t.Errorf("%s was collected", id)
		}
	}
	if got := counterValue(t, e.l.metrics.collected); got != 5 {
		t.Errorf("berth_sessions_collected_total %v, want 5", got)
	}
	// Within the next hour the marks stay; after it they go.
	e.clock.Advance(30 * time.Minute)
	e.l.newCollect().round(context.Background())
	if m, _ := e.c.Read().CollectedSession("s-1"); m == nil {
		t.Fatal("a mark was forgotten before the retention")
	}
	e.clock.Advance(31 * time.Minute)
	e.l.newCollect().round(context.Background())
	for _, id := range append(old, "s-recent") {
		if m, _ := e.c.Read().CollectedSession(id); m != nil && id != "s-recent" {
			t.Errorf("the mark of %s is still there", id)
		}
	}
	if s, _ := e.c.Read().Session("s-recent"); s != nil {
		t.Error("s-recent, ended 81 min ago, was not collected")
	}
}

// The leader writes what agents measured: only for containers the records
// place on the reporting agent, what the counters gained, and nothing when
// nothing changed.
func TestMeasurementsReachTheUsageRowsOnlyFromTheSessionsOwnAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bootstrap(t)
	e.aliveAgent(t, "agent-a")
	e.aliveAgent(t, "agent-rogue")
	e.runSessions(t, "s-1")
	tm := newTerm(e.clock.Now())
	e.l.term.Store(tm)
	report := func(agent string, cpu float64, mem int64) {
		t.Helper()
		if err := tm.measures.note(e.c.Read(), agent, e.clock.Now(), []api.ContainerReport{{ID: "s-1-0", SessionID: "s-1", Index: 0,
			Status: api.ContainerRunning, CPUSeconds: cpu, MemoryWorkingSet: mem}}); err != nil {
			t.Fatal(err)
		}
	}
	d := e.l.newMeasure(tm)
	report("agent-a", 12.5, 100<<20)
	report("agent-a", 30, 60<<20)
	report("agent-rogue", 1e9, 1<<40) // not where s-1 runs: ignored
	d.round(context.Background())
	day := e.clock.Now().UTC().Format("2006-01-02")
	row, _ := e.c.Read().UsageDayRow(day, "AKADMIN")
	if row == nil || row.CPUMillis != 30_000 || row.PeakMemBytes != 100<<20 {
		t.Fatalf("usage row %+v", row)
	}
	d.round(context.Background()) // nothing new
	if n := e.c.count(fsm.MsgSessionsMeasured); n != 1 {
		t.Fatalf("%d measurement entries, want 1", n)
	}
	report("agent-a", 45, 10<<20)
	d.round(context.Background())
	row, _ = e.c.Read().UsageDayRow(day, "AKADMIN")
	if row.CPUMillis != 45_000 || row.PeakMemBytes != 100<<20 {
		t.Fatalf("usage row %+v", row)
	}
	// A new leadership, with no memory: the counter it hears again adds
	// nothing twice.
	tm2 := newTerm(e.clock.Now())
	e.l.term.Store(tm2)
	if err := tm2.measures.note(e.c.Read(), "agent-a", e.clock.Now(), []api.ContainerReport{{ID: "s-1-0", SessionID: "s-1", Index: 0,
		Status: api.ContainerRunning, CPUSeconds: 46, MemoryWorkingSet: 1}}); err != nil {
		t.Fatal(err)
	}
	e.l.newMeasure(tm2).round(context.Background())
	if row, _ = e.c.Read().UsageDayRow(day, "AKADMIN"); row.CPUMillis != 46_000 {
		t.Fatalf("after a new leadership %d ms, want 46000", row.CPUMillis)
	}
	if got := fmt.Sprint(len(tm2.measures.sessions)); got != "1" {
		t.Fatalf("memory of %s sessions", got)
	}
}

// The leader's memory of measurements forgets a session a few rounds after
// its last report, whatever it reported: a container that used no
// measurable CPU (a counter of 0, never proposed) included. Each session
// run used to stay in it for the whole leadership.
func TestMeasurementsForgetSessionsNoLongerReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bootstrap(t)
	e.aliveAgent(t, "agent-a")
	e.runSessions(t, "s-idle", "s-busy")
	tm := newTerm(e.clock.Now())
	e.l.term.Store(tm)
	if err := tm.measures.note(e.c.Read(), e.agentOf(t, "s-idle"), e.clock.Now(), []api.ContainerReport{
		{ID: "s-idle-0", SessionID: "s-idle", Index: 0, Status: api.ContainerRunning, CPUSeconds: 0, MemoryWorkingSet: 0}}); err != nil {
		t.Fatal(err)
	}
	if err := tm.measures.note(e.c.Read(), e.agentOf(t, "s-busy"), e.clock.Now(), []api.ContainerReport{
		{ID: "s-busy-0", SessionID: "s-busy", Index: 0, Status: api.ContainerRunning, CPUSeconds: 3, MemoryWorkingSet: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	d := e.l.newMeasure(tm)
	d.round(context.Background())
	if n := len(tm.measures.sessions); n != 2 {
		t.Fatalf("right after their reports the leader remembers %d sessions, want 2", n)
	}
	for range 4 {
		e.clock.Advance(e.l.cfg.MeasureEvery)
		d.round(context.Background())
	}
	if n := len(tm.measures.sessions); n != 0 {
		t.Errorf("four rounds after the last report the leader still remembers %d sessions: %v", n, tm.measures.sessions)
	}
}
