package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// rarely is a heartbeat interval no test outlives: whatever the managers
// hear after the first beat, they heard from a report.
const rarely = time.Hour

// startQuietAgent is startAgent with heartbeats an hour apart.
func startQuietAgent(t *testing.T, rt *fakeRuntime, mgr *fakeManager) *Agent {
	t.Helper()
	reg := prometheus.NewRegistry()
	a, err := New(Config{StateDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", HeartbeatEvery: rarely, ResyncEvery: rarely, DesiredWait: 200 * time.Millisecond,
		Runtime: rt, Host: fakeHost{}, Manager: mgr, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: reg, Gatherer: reg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, 5*time.Second, func() error {
		if _, n := mgr.lastHeartbeat(); n == 0 {
			return fmt.Errorf("no first heartbeat yet")
		}
		return nil
	})
	return a
}

// lastReported is the latest state of each container across the reports.
func lastReported(mgr *fakeManager) map[string]api.ContainerReport {
	out := map[string]api.ContainerReport{}
	for _, rep := range mgr.reported() {
		for _, r := range rep {
			out[r.ID] = r
		}
	}
	return out
}

// changeBehindTheAgent changes a container as containerd would and
// publishes the event it would.
func (f *fakeRuntime) changeBehindTheAgent(id string, kind runtime.EventKind, change func(c *runtime.Container)) {
	f.mu.Lock()
	if change == nil {
		delete(f.containers, id)
	} else {
		c := f.containers[id]
		change(&c)
		f.containers[id] = c
	}
	f.mu.Unlock()
	f.emit(id, kind)
}

// A container that starts, exits, is OOM-killed or vanishes is reported as
// it happens: the heartbeat and the resync without news are an hour apart,
// so only the runtime's events can prompt the reports, and the managers
// hear every change with the one heartbeat of the agent's start.
func TestContainerChangesAreReportedBeforeTheNextHeartbeat(t *testing.T) {
	rt := newFakeRuntime("berth/base:latest")
	mgr := newFakeManager()
	startQuietAgent(t, rt, mgr)

	mgr.setDesired(desired("c1", "berth/base:latest"), desired("c2", "berth/base:latest"), desired("c3", "berth/base:latest"))
	eventually(t, 10*time.Second, func() error {
		got := lastReported(mgr)
		for _, id := range []string{"c1", "c2", "c3"} {
			if got[id].Status != api.ContainerRunning {
				return fmt.Errorf("%s reported %+v", id, got[id])
			}
		}
		return nil
	})

	rt.changeBehindTheAgent("c1", runtime.EventExited, func(c *runtime.Container) {
		c.State, c.ExitCode, c.ExitedAt = runtime.Exited, 3, time.Unix(200, 0)
	})
	rt.changeBehindTheAgent("c2", runtime.EventOOM, func(c *runtime.Container) {
		c.State, c.ExitCode, c.OOMKilled, c.ExitedAt = runtime.Exited, 137, true, time.Unix(200, 0)
	})
	rt.changeBehindTheAgent("c3", runtime.EventDeleted, nil)
	eventually(t, 10*time.Second, func() error {
		got := lastReported(mgr)
		if c := got["c1"]; c.Status != api.ContainerExited || c.ExitCode == nil || *c.ExitCode != 3 {
			return fmt.Errorf("c1 reported %+v", c)
		}
		if c := got["c2"]; c.Status != api.ContainerExited || c.Reason != "oom-killed" {
			return fmt.Errorf("c2 reported %+v", c)
		}
		if c := got["c3"]; c.Status != api.ContainerGone || c.Reason != "container vanished from the runtime" {
			return fmt.Errorf("c3 reported %+v", c)
		}
		return nil
	})
	if _, n := mgr.lastHeartbeat(); n != 1 {
		t.Fatalf("%d heartbeats: the changes must not have waited for one", n)
	}
}

// What happens while a report is on its way goes out together in the next
// one.
func TestABurstOfChangesGoesOutInOneReport(t *testing.T) {
	rt := newFakeRuntime("berth/base:latest")
	mgr := newFakeManager()
	startQuietAgent(t, rt, mgr)
	ids := []string{"c1", "c2", "c3", "c4", "c5"}
	var want []api.DesiredContainer
	for _, id := range ids {
		want = append(want, desired(id, "berth/base:latest"))
	}
	mgr.setDesired(want...)
	eventually(t, 10*time.Second, func() error {
		if got := lastReported(mgr); len(got) != len(ids) {
			return fmt.Errorf("reported %v", got)
		}
		return nil
	})
	before := len(mgr.reported())

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	mgr.mu.Lock()
	mgr.onReport = func(ctx context.Context, _ []api.ContainerReport) {
		once.Do(func() {
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
			}
		})
	}
	mgr.mu.Unlock()
	exit := func(c *runtime.Container) { c.State, c.ExitCode = runtime.Exited, 0 }
	rt.changeBehindTheAgent("c1", runtime.EventExited, exit)
	<-entered // c1's report is on its way, held
	for _, id := range ids[1:] {
		rt.changeBehindTheAgent(id, runtime.EventExited, exit)
	}
	close(release)
	eventually(t, 10*time.Second, func() error {
		got := lastReported(mgr)
		for _, id := range ids {
			if got[id].Status != api.ContainerExited {
				return fmt.Errorf("%s reported %+v", id, got[id])
			}
		}
		return nil
	})
	reps := mgr.reported()[before:]
	if len(reps) != 2 || len(reps[0]) != 1 || reps[0][0].ID != "c1" || len(reps[1]) != 4 {
		t.Fatalf("reports after the burst: %+v, want c1's then one with the other four", reps)
	}
}

// A report is what differs from what the managers last heard: nothing, when
// nothing changed; a container no longer listed is gone.
func TestAReportIsWhatChangedSinceTheManagersLastHeard(t *testing.T) {
	var tl told
	code := 0
	run := api.ContainerReport{ID: "c1", SessionID: "s-1", Status: api.ContainerRunning, CPUSeconds: 1}
	other := api.ContainerReport{ID: "c2", SessionID: "s-2", Status: api.ContainerRunning}
	if got := tl.changes([]api.ContainerReport{run}); len(got) != 1 {
		t.Fatalf("first report %+v, want c1", got)
	}
	tl.heardAll([]api.ContainerReport{run, other})
	busier := run
	busier.CPUSeconds = 9 // usage is no news
	if got := tl.changes([]api.ContainerReport{busier, other}); len(got) != 0 {
		t.Fatalf("nothing changed, yet %+v", got)
	}
	exited := run
	exited.Status, exited.ExitCode = api.ContainerExited, &code
	got := tl.changes([]api.ContainerReport{exited})
	if len(got) != 2 || got[0].ID != "c1" || got[0].Status != api.ContainerExited ||
		got[1].ID != "c2" || got[1].Status != api.ContainerGone || got[1].SessionID != "s-2" {
		t.Fatalf("changes %+v, want c1 exited and c2 gone", got)
	}
	tl.heard(got)
	if got := tl.changes([]api.ContainerReport{exited}); len(got) != 0 {
		t.Fatalf("after the report was heard: %+v", got)
	}
	if snap := tl.snapshot(); len(snap) != 1 {
		t.Fatalf("told %+v, want c1 only", snap)
	}
}

func (t *told) snapshot() map[string]api.ContainerReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.m)
}

// A container that starts while a report lists the runtime is not in that
// list; the report must not take it as started and absent (gone) either,
// which would end a session that runs.
func TestAContainerStartingDuringAReportIsNotReportedGone(t *testing.T) {
	rt := newFakeRuntime("img")
	c := newTestConverger(rt, &clock{now: time.Unix(1000, 0)})
	c.setDesired([]api.DesiredContainer{desired("a", "img")})
	rt.afterList = func() {
		if err := c.converge(context.Background()); err != nil {
			t.Error(err)
		}
	}
	rs, err := c.report(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.ID == "a" {
			t.Fatalf("the container started meanwhile is reported %+v", r)
		}
	}
	if !c.wasStarted("a") {
		t.Fatal("the container was not started during the report: the test proves nothing")
	}
	if got := reportByID(t, c)["a"]; got.Status != api.ContainerRunning {
		t.Fatalf("the next report says %+v, want running", got)
	}
}
