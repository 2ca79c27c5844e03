package fsm

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// usageEntries are the usage entries of the determinism log, after
// sessionEntries (s1 and s2 TERMINATED at 13 s and 23 s, s3 ERROR at 40 s):
// measurements (of a running, an ended, a never placed and an unknown
// session), and collections in two batches, one too early for some
// sessions, then the forgetting of a mark.
func usageEntries(base time.Time) []Command {
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	return []Command{
		SessionsMeasured{At: at(35), Sessions: []SessionMeasure{{SessionID: "s3", Containers: cpuMs(1500), PeakMemBytes: 1 << 20},
			{SessionID: "s1", Containers: cpuMs(100), PeakMemBytes: 5}, {SessionID: "s5", Containers: cpuMs(9)}, {SessionID: "ghost", Containers: cpuMs(1)}}},
		SessionsMeasured{At: at(36), Sessions: []SessionMeasure{{SessionID: "s3", Containers: cpuMs(1200)}}}, // lower: adds nothing
		SessionsMeasured{Sessions: make([]SessionMeasure, MaxMeasureBatch+1)},                                // refused: too many
		SessionsCollect{At: at(100), Before: at(25), Sessions: []string{"s1", "s2", "s3", "ghost"},
			ForgetBefore: at(0), Forget: []string{"s1"}},
		SessionsCollect{At: at(200), Before: at(45), Sessions: []string{"s3"}, ForgetBefore: at(150), Forget: []string{"s1", "ghost"}},
		SessionsCollect{At: at(201), Sessions: make([]string, MaxCollectBatch+1)}, // refused: too many
	}
}

// cpuMs is a measurement of containers 0, 1, … with these counters.
func cpuMs(ms ...int64) []ContainerMeasure {
	out := make([]ContainerMeasure, len(ms))
	for i, m := range ms {
		out[i] = ContainerMeasure{Index: i, CPUMillis: m}
	}
	return out
}

const (
	usageKeyA = "AKUSAGEA00000000000"
	usageKeyB = "AKUSAGEB00000000000"
)

// usageFSM is an FSM with an unlimited policy, two users of two domains
// with a keypair each (A: admin@x.io in default; B: bea@lab.io in lab) and
// a large agent a1.
func usageFSM(t *testing.T, log *slog.Logger) (*FSM, *uint64) {
	t.Helper()
	f := New(log)
	applyAll(t, f, testLog(t, 1, 0)[:1])
	base := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	index := uint64(10)
	for _, c := range []Command{
		PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "open", MaxContainersPerSession: 4}}},
		DomainCreate{Domain: state.Domain{Name: "lab", IsActive: true, CreatedAt: base}},
		UserCreate{User: state.User{Email: "bea@lab.io", Username: "bea", Role: api.RoleUser, Status: api.StatusActive, Domain: "lab", CreatedAt: base},
			Keypair: state.Keypair{AccessKey: usageKeyB, User: "bea@lab.io", IsActive: true, ResourcePolicy: "open", CreatedAt: base}},
		KeypairPut{Keypair: state.Keypair{AccessKey: usageKeyA, User: "admin@x.io", IsActive: true, ResourcePolicy: "open", CreatedAt: base}},
		AgentPut{Agent: state.Agent{ID: "a1", Status: state.AgentAlive, Schedulable: true,
			Capacity: slots.Slots{slots.CPU: 1 << 40, slots.Mem: 1 << 50}, LastHeartbeatAt: base}},
	} {
		mustApply(t, f, &index, c)
	}
	return f, &index
}

// ran makes a session of 1.5 cpu and 2 GiB per container: created at
// placed, placed (and running) then, and, unless end is zero, ended then —
// TERMINATED, or ERROR when failed.
func ran(t *testing.T, f *FSM, index *uint64, id, ak string, containers int, placed, end time.Time, failed bool) {
	t.Helper()
	c := newSession(id, ak, api.SessionBatch, 1500, containers, placed)
	c.Session.Requested[slots.Mem] = 2 << 30
	mustApply(t, f, index, c)
	cs := make([]PlacedContainer, containers)
	for i := range cs {
		cs[i].Agent = "a1"
	}
	if r := mustApply(t, f, index, Plan{Version: PlanVersion, At: placed, Placements: []Placement{{SessionID: id, Containers: cs}}}); len(r.Value.(*PlanResult).Refused) > 0 {
		t.Fatalf("plan refused: %+v", r.Value)
	}
	var running []ContainerReport
	for i := range containers {
		running = append(running, ContainerReport{SessionID: id, Index: i, Status: api.ContainerRunning})
	}
	mustApply(t, f, index, SessionsReport{At: placed, Agent: "a1", Reports: running})
	if end.IsZero() {
		return
	}
	var done []ContainerReport
	for i := range containers {
		if failed {
			done = append(done, ContainerReport{SessionID: id, Index: i, Status: api.ContainerFailed, Reason: "broke"})
		} else {
			done = append(done, exitReport(id, i, 0))
		}
	}
	mustApply(t, f, index, SessionsReport{At: end, Agent: "a1", Reports: done})
}

// usageTotals is every total from 2026-01-01 to 2026-01-31 as now sees it.
func usageTotals(t *testing.T, f *FSM, now time.Time) []state.UsageTotal {
	t.Helper()
	out, err := f.State().Read().UsageTotals("2026-01-01", "2026-01-31", now, func(string, string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cpuMem is the allocated cpu (core-seconds) and mem (GiB-seconds) of a
// total.
func cpuMem(u state.UsageTotal) string {
	return fmt.Sprintf("%s cpu=%s mem=%d", u.Day, slots.Format(slots.CPU, u.Alloc[0]), u.Alloc[1]/(1<<30))
}

func TestUsageCountsEachSessionForTheTimeItHeldSlotsByUTCDay(t *testing.T) {
	day := func(d, h, m int) time.Time { return time.Date(2026, 1, d, h, m, 0, 0, time.UTC) }
	cases := []struct {
		name       string
		containers int
		placed     time.Time
		end        time.Time // zero: still running
		failed     bool
		now        time.Time
		want       []string // cpuMem of each day
		started    []int64
		finished   []int64
		failedN    []int64
	}{
		{name: "a finished session counts its whole life", containers: 1, placed: day(2, 10, 0), end: day(2, 11, 0), now: day(5, 0, 0),
			want: []string{"2026-01-02 cpu=5400 mem=7200"}, started: []int64{1}, finished: []int64{1}, failedN: []int64{0}},
		{name: "a running session counts up to now", containers: 1, placed: day(2, 10, 0), now: day(2, 10, 30),
			want: []string{"2026-01-02 cpu=2700 mem=3600"}, started: []int64{1}, finished: []int64{0}, failedN: []int64{0}},
		{name: "a session over midnight is split at the UTC day", containers: 2, placed: day(2, 23, 0), end: day(3, 0, 30), now: day(9, 0, 0),
			want:    []string{"2026-01-02 cpu=10800 mem=14400", "2026-01-03 cpu=5400 mem=7200"},
			started: []int64{1, 0}, finished: []int64{0, 1}, failedN: []int64{0, 0}},
		{name: "a running session over days counts each day up to now", containers: 1, placed: day(2, 12, 0), now: day(4, 6, 0),
			want:    []string{"2026-01-02 cpu=64800 mem=86400", "2026-01-03 cpu=129600 mem=172800", "2026-01-04 cpu=32400 mem=43200"},
			started: []int64{1, 0, 0}, finished: []int64{0, 0, 0}, failedN: []int64{0, 0, 0}},
		{name: "a failed session counts as failed on the day it ended", containers: 1, placed: day(2, 23, 59), end: day(3, 0, 1), failed: true, now: day(9, 0, 0),
			want:    []string{"2026-01-02 cpu=90 mem=120", "2026-01-03 cpu=90 mem=120"},
			started: []int64{1, 0}, finished: []int64{0, 0}, failedN: []int64{0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, index := usageFSM(t, nil)
			ran(t, f, index, "s1", usageKeyA, c.containers, c.placed, c.end, c.failed)
			got := usageTotals(t, f, c.now)
			if len(got) != len(c.want) {
				t.Fatalf("got %d days %+v, want %v", len(got), got, c.want)
			}
			for i, u := range got {
				if cpuMem(u) != c.want[i] || u.Started != c.started[i] || u.Finished != c.finished[i] || u.Failed != c.failedN[i] {
					t.Errorf("day %d: %s started %d finished %d failed %d; want %s started %d finished %d failed %d",
						i, cpuMem(u), u.Started, u.Finished, u.Failed, c.want[i], c.started[i], c.finished[i], c.failedN[i])
				}
				if u.User != "admin@x.io" || u.Domain != "default" || u.AccessKey != usageKeyA {
					t.Errorf("day %d is %s/%s/%s", i, u.User, u.Domain, u.AccessKey)
				}
			}
		})
	}
}

func TestUsageOfARunningSessionIsTheSameAtItsEndAsUpToThen(t *testing.T) {
	placed := time.Date(2026, 1, 2, 22, 17, 3, 123456789, time.UTC)
	end := placed.Add(27*time.Hour + 13*time.Millisecond)
	f, index := usageFSM(t, nil)
	ran(t, f, index, "s1", usageKeyA, 3, placed, time.Time{}, false)
	running := usageTotals(t, f, end)
	mustApply(t, f, index, SessionsReport{At: end, Agent: "a1", Reports: []ContainerReport{exitReport("s1", 0, 0), exitReport("s1", 1, 0), exitReport("s1", 2, 0)}})
	ended := usageTotals(t, f, end.Add(48*time.Hour))
	for i := range running {
		if running[i].Alloc != ended[i].Alloc {
			t.Errorf("%s: running to the end %v, ended %v", running[i].Day, running[i].Alloc, ended[i].Alloc)
		}
	}
}

func TestUsageRollsNothingIntoAnotherKeypairAndNeverGoesNegative(t *testing.T) {
	f, index := usageFSM(t, nil)
	at := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	ran(t, f, index, "a", usageKeyA, 1, at, at.Add(time.Hour), false)
	ran(t, f, index, "b", usageKeyB, 2, at, at.Add(2*time.Hour), false)
	got := usageTotals(t, f, at.Add(5*time.Hour))
	if len(got) != 2 || got[0].AccessKey != usageKeyA || got[1].AccessKey != usageKeyB ||
		cpuMem(got[0]) != "2026-01-02 cpu=5400 mem=7200" || cpuMem(got[1]) != "2026-01-02 cpu=21600 mem=28800" ||
		got[1].User != "bea@lab.io" || got[1].Domain != "lab" {
		t.Fatalf("totals %+v", got)
	}
	// Taking out more than a row holds stops at zero.
	tx := f.State().Write()
	row, _ := tx.UsageDayRow("2026-01-02", usageKeyA)
	n := *row
	n.Collected.Alloc[0] = -5
	if err := tx.SetUsageDay(&n); err != nil {
		t.Fatal(err)
	}
	tx.Commit()
	r := mustApply(t, f, index, UsageRecalculate{})
	res := r.Value.(*UsageRecalculated)
	if res.UsageDays != 2 || len(res.Drift) != 1 || res.Drift[0].Slot != "collected.allocated.cpu" || res.Drift[0].Recorded != -5 || res.Drift[0].Actual != 0 {
		t.Fatalf("recalculation %+v", res)
	}
	row, _ = f.State().Read().UsageDayRow("2026-01-02", usageKeyA)
	if row.Collected.Alloc[0] != 0 {
		t.Fatalf("negative value not repaired: %+v", row.Collected)
	}
}

func TestRecalculateUsageChecksTheRowsAgainstTheSessionsStillHeld(t *testing.T) {
	f, index := usageFSM(t, nil)
	at := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	ran(t, f, index, "a", usageKeyA, 1, at, at.Add(time.Hour), false)
	ran(t, f, index, "b", usageKeyA, 1, at, at.Add(2*time.Hour), false)
	mustApply(t, f, index, SessionsCollect{At: at.Add(24 * time.Hour), Before: at.Add(90 * time.Minute), Sessions: []string{"a", "b"}})
	before := usageTotals(t, f, at.Add(48*time.Hour))
	if r := mustApply(t, f, index, UsageRecalculate{}).Value.(*UsageRecalculated); len(r.Drift) != 0 {
		t.Fatalf("drift right after a collection: %+v", r.Drift)
	}
	// A bug that lost part of the held tally is found and mended; what the
	// collected session left stays.
	tx := f.State().Write()
	row, _ := tx.UsageDayRow("2026-01-02", usageKeyA)
	n := *row
	n.Held.Alloc[1] -= 1000
	n.Held.Finished = 7
	if err := tx.SetUsageDay(&n); err != nil {
		t.Fatal(err)
	}
	tx.Commit()
	r := mustApply(t, f, index, UsageRecalculate{}).Value.(*UsageRecalculated)
	var got []string
	for _, d := range r.Drift {
		got = append(got, fmt.Sprintf("%s %s %d→%d", d.Key, d.Slot, d.Recorded, d.Actual))
	}
	want := []string{
		fmt.Sprintf("usage/2026-01-02/%s allocated.mem %d→%d", usageKeyA, int64(2<<30)*7200-1000, int64(2<<30)*7200),
		fmt.Sprintf("usage/2026-01-02/%s sessions.finished 7→1", usageKeyA),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("drift\n %v\nwant\n %v", got, want)
	}
	if after := usageTotals(t, f, at.Add(48*time.Hour)); !reflect.DeepEqual(after, before) {
		t.Fatalf("after the repair %+v, before %+v", after, before)
	}
}

func TestCollectingSessionsKeepsTheirUsageAndLeavesAMark(t *testing.T) {
	f, index := usageFSM(t, nil)
	at := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	for i := range 5 {
		ran(t, f, index, fmt.Sprintf("s%d", i), usageKeyA, 1, at, at.Add(time.Duration(i+1)*time.Hour), i == 4)
	}
	ran(t, f, index, "live", usageKeyA, 1, at, time.Time{}, false)
	now := at.Add(10 * time.Hour)
	before := usageTotals(t, f, now)
	// The leader's cut is 3 h after placement: s0..s2 ended by then; s3,
	// s4 and the running session are not collected whatever it names.
	r := mustApply(t, f, index, SessionsCollect{At: now, Before: at.Add(3 * time.Hour), Sessions: []string{"s0", "s1", "s2", "s3", "s4", "live", "nobody"}})
	if got := r.Value.(*SessionsCollected); got.Collected != 3 {
		t.Fatalf("collected %+v, want 3", got)
	}
	tx := f.State().Read()
	for id, gone := range map[string]bool{"s0": true, "s1": true, "s2": true, "s3": false, "s4": false, "live": false} {
		s, _ := tx.Session(id)
		m, _ := tx.CollectedSession(id)
		if (s == nil) != gone || (m != nil) != gone {
			t.Errorf("%s: record %v, mark %v; want collected %v", id, s != nil, m != nil, gone)
		}
		if gone && (!m.CollectedAt.Equal(now) || !m.TerminatedAt.Equal(s2end(at, id)) || m.Owner != "admin@x.io" || m.Domain != "default") {
			t.Errorf("mark %+v", m)
		}
	}
	if n, _ := tx.CountSessionsInStatus(api.SessionTerminated); n != 1 {
		t.Errorf("TERMINATED sessions counted %d, want 1 (s3)", n)
	}
	if after := usageTotals(t, f, now); !reflect.DeepEqual(after, before) {
		t.Fatalf("collection changed the usage:\n before %+v\n after  %+v", before, after)
	}
	// A new session may not take a collected one's id while its mark is kept.
	if r := apply(t, f, index, newSession("s0", usageKeyA, api.SessionBatch, 100, 1, now)); !apierr.Is(r.Err, apierr.Conflict) {
		t.Fatalf("reusing a collected id: %v", r.Err)
	}
	// Marks are forgotten once the leader's cut passes their collection.
	r = mustApply(t, f, index, SessionsCollect{At: now.Add(time.Hour), ForgetBefore: now.Add(-time.Second), Forget: []string{"s0"}})
	if got := r.Value.(*SessionsCollected); got.Forgotten != 0 {
		t.Fatalf("forgot a mark collected after the cut: %+v", got)
	}
	r = mustApply(t, f, index, SessionsCollect{At: now.Add(time.Hour), ForgetBefore: now, Forget: []string{"s0", "s1", "s2"}})
	if got := r.Value.(*SessionsCollected); got.Forgotten != 3 {
		t.Fatalf("forgot %+v, want 3", got)
	}
	if r := apply(t, f, index, SessionsCollect{Sessions: make([]string, MaxCollectBatch+1)}); !apierr.Is(r.Err, apierr.Invalid) {
		t.Fatalf("an oversized batch: %v", r.Err)
	}
}

func s2end(at time.Time, id string) time.Time {
	var i int
	fmt.Sscanf(id, "s%d", &i)
	return at.Add(time.Duration(i+1) * time.Hour)
}

func TestMeasuredUsageAddsWhatTheCountersGainedToTheDayOfTheMeasurement(t *testing.T) {
	f, index := usageFSM(t, nil)
	at := time.Date(2026, 1, 2, 23, 0, 0, 0, time.UTC)
	ran(t, f, index, "s1", usageKeyA, 2, at, time.Time{}, false)
	for _, m := range []SessionsMeasured{
		{At: at.Add(30 * time.Minute), Sessions: []SessionMeasure{{SessionID: "s1", Containers: cpuMs(40_000, 20_000), PeakMemBytes: 700}}},
		// Container 0's counter went back (it restarted, or a report was
		// late): nothing of it is added; container 1 gained 5 s.
		{At: at.Add(50 * time.Minute), Sessions: []SessionMeasure{{SessionID: "s1", Containers: cpuMs(30_000, 25_000), PeakMemBytes: 900}}},
		// After midnight: a new leader that has heard only from container 1.
		{At: at.Add(70 * time.Minute), Sessions: []SessionMeasure{{SessionID: "s1", Containers: []ContainerMeasure{{Index: 1, CPUMillis: 45_000}}, PeakMemBytes: 300}}},
		{At: at.Add(80 * time.Minute), Sessions: []SessionMeasure{{SessionID: "s1", Containers: cpuMs(50_000, 45_000), PeakMemBytes: 400},
			{SessionID: "s1", Containers: []ContainerMeasure{{Index: 7, CPUMillis: 1 << 40}, {Index: -1, CPUMillis: 1 << 40}}}}}, // no such containers; the last of a session wins
	} {
		mustApply(t, f, index, m)
	}
	got := usageTotals(t, f, at.Add(2*time.Hour))
	if len(got) != 2 || got[0].CPUMillis != 65_000 || got[0].PeakMemBytes != 900 || got[1].CPUMillis != 20_000 || got[1].PeakMemBytes != 300 {
		t.Fatalf("measured %+v", got)
	}
	if s := session(t, f, "s1"); s.MeasuredCPUMillis() != 85_000 || s.PeakMemBytes != 900 {
		t.Fatalf("session measured %d ms, peak %d", s.MeasuredCPUMillis(), s.PeakMemBytes)
	}
}

func TestASessionWithInconsistentTimesIsCountedAsRecordedAndLogged(t *testing.T) {
	var logs bytes.Buffer
	f, index := usageFSM(t, slog.New(slog.NewTextHandler(&logs, nil)))
	at := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	// A new leader whose clock is behind ends the session before it was
	// placed.
	ran(t, f, index, "s1", usageKeyA, 1, at, at.Add(-time.Minute), false)
	got := usageTotals(t, f, at.Add(time.Hour))
	if len(got) != 1 || got[0].Alloc != [4]int64{} || got[0].Started != 1 || got[0].Finished != 1 {
		t.Fatalf("totals %+v", got)
	}
	if !strings.Contains(logs.String(), "session times are inconsistent") || !strings.Contains(logs.String(), "session=s1") {
		t.Fatalf("not logged:\n%s", logs.String())
	}
}

func TestUsageIsTheSameAfterASnapshotAndARestore(t *testing.T) {
	f := newTestFSM()
	applyAll(t, f, testLog(t, 7, 50))
	now := time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC)
	want := usageTotals(t, f, now)
	if len(want) == 0 {
		t.Fatal("the test log left no usage")
	}
	snap, _ := f.Snapshot()
	sink := &bufferSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	restored := newTestFSM()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := usageTotals(t, restored, now); !reflect.DeepEqual(got, want) {
		t.Fatalf("after restore\n %+v\nwant\n %+v", got, want)
	}
	// And the derived tallies rebuilt on restore match the records.
	if d, _, err := restored.State().Read().UsageDayDrifts(); err != nil || len(d) != 0 {
		t.Fatalf("drift after restore: %v %+v", err, d)
	}
	// Two FSMs fed the same log agree on the derived tallies too.
	other := newTestFSM()
	applyAll(t, other, testLog(t, 7, 50))
	if got := usageTotals(t, other, now); !reflect.DeepEqual(got, want) {
		t.Fatalf("another FSM\n %+v\nwant\n %+v", got, want)
	}
}
