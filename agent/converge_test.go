package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/gpu"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newTestConverger(rt runtime.Runtime, clk *clock) *converger {
	noGPUs, err := gpu.Open(gpu.Config{})
	if err != nil {
		panic(err)
	}
	return newConverger(rt, noGPUs, slog.New(slog.NewTextHandler(io.Discard, nil)), clk.Now, 30*time.Second, time.Second)
}

func desired(id, image string) api.DesiredContainer {
	return api.DesiredContainer{ID: id, SessionID: "s-" + id, Image: image, Command: []string{"sleep", "1000"},
		Slots: slots.Slots{slots.CPU: 500, slots.Mem: 64 << 20}}
}

func reportByID(t *testing.T, c *converger) map[string]api.ContainerReport {
	t.Helper()
	rs, err := c.report(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]api.ContainerReport{}
	for _, r := range rs {
		out[r.ID] = r
	}
	return out
}

func TestConvergeDoesNothingBeforeTheManagersAnswer(t *testing.T) {
	rt := newFakeRuntime("img")
	rt.containers["old"] = runtime.Container{ID: "old", State: runtime.Running}
	clk := &clock{now: time.Unix(1000, 0)}
	c := newTestConverger(rt, clk)
	clk.now = clk.now.Add(time.Hour)
	if err := c.converge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rt.removed) != 0 || len(rt.runs) != 0 {
		t.Fatalf("acted without a desired state: runs %v removed %v", rt.runs, rt.removed)
	}
}

func TestConvergeStartsWhatIsMissingWithTheSlotsAsLimits(t *testing.T) {
	rt := newFakeRuntime("img")
	c := newTestConverger(rt, &clock{now: time.Unix(1000, 0)})
	c.setDesired([]api.DesiredContainer{desired("a", "img")})
	for i := 0; i < 2; i++ {
		if err := c.converge(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(rt.runs) != 1 {
		t.Fatalf("%d runs, want exactly one", len(rt.runs))
	}
	s := rt.runs[0]
	if s.MilliCPU != 500 || s.MemoryBytes != 64<<20 || s.Labels[runtime.LabelSession] != "s-a" || s.Labels[runtime.LabelSlots] == "" {
		t.Fatalf("spec %+v", s)
	}
	if r := reportByID(t, c)["a"]; r.Status != "running" || r.CPUSeconds != 1.5 {
		t.Fatalf("report %+v", r)
	}
}

func TestAVanishedContainerIsReportedGoneNotRestarted(t *testing.T) {
	rt := newFakeRuntime("img")
	c := newTestConverger(rt, &clock{now: time.Unix(1000, 0)})
	c.setDesired([]api.DesiredContainer{desired("a", "img")})
	_ = c.converge(context.Background())
	delete(rt.containers, "a") // removed behind the agent's back
	_ = c.converge(context.Background())
	if len(rt.runs) != 1 {
		t.Fatalf("the vanished container was started again (%d runs)", len(rt.runs))
	}
	if r := reportByID(t, c)["a"]; r.Status != api.ContainerGone {
		t.Fatalf("report %+v, want gone", r)
	}
}

func TestAFailedStartIsReportedWithItsReasonAndNotRetried(t *testing.T) {
	rt := newFakeRuntime()
	c := newTestConverger(rt, &clock{now: time.Unix(1000, 0)})
	c.setDesired([]api.DesiredContainer{desired("a", "missing:latest")})
	_ = c.converge(context.Background())
	_ = c.converge(context.Background())
	r := reportByID(t, c)["a"]
	if r.Status != api.ContainerFailed || r.Reason[:len("image-missing")] != "image-missing" {
		t.Fatalf("report %+v", r)
	}
	// Leaving the desired set clears the failure.
	c.setDesired(nil)
	if _, ok := reportByID(t, c)["a"]; ok {
		t.Fatal("a container no longer desired is still reported failed")
	}
}

func TestOrphansAreRemovedOnlyAfterTheGrace(t *testing.T) {
	rt := newFakeRuntime("img")
	rt.containers["orphan"] = runtime.Container{ID: "orphan", State: runtime.Running}
	clk := &clock{now: time.Unix(1000, 0)}
	c := newTestConverger(rt, clk)
	c.setDesired(nil)
	_ = c.converge(context.Background())
	clk.now = clk.now.Add(29 * time.Second)
	_ = c.converge(context.Background())
	if len(rt.removed) != 0 {
		t.Fatal("orphan removed inside its grace")
	}
	clk.now = clk.now.Add(2 * time.Second)
	_ = c.converge(context.Background())
	if len(rt.removed) != 1 || rt.removed[0] != "orphan" {
		t.Fatalf("removed %v, want the orphan", rt.removed)
	}
}

func TestAdoptedContainersAreNotStartedAgain(t *testing.T) {
	rt := newFakeRuntime("img")
	rt.containers["a"] = runtime.Container{ID: "a", SessionID: "s-a", State: runtime.Running}
	c := newTestConverger(rt, &clock{now: time.Unix(1000, 0)})
	existing, _ := rt.List(context.Background())
	c.adopt(existing)
	c.setDesired([]api.DesiredContainer{desired("a", "img")})
	_ = c.converge(context.Background())
	if len(rt.runs) != 0 {
		t.Fatal("a re-attached container was started again")
	}
	// If it then dies, it is reported with its exit, not restarted.
	rt.containers["a"] = runtime.Container{ID: "a", SessionID: "s-a", State: runtime.Exited, ExitCode: 137, OOMKilled: true, ExitedAt: time.Unix(2000, 0)}
	_ = c.converge(context.Background())
	r := reportByID(t, c)["a"]
	if len(rt.runs) != 0 || r.Status != "exited" || r.ExitCode == nil || *r.ExitCode != 137 || r.Reason != "oom-killed" {
		t.Fatalf("runs %d, report %+v", len(rt.runs), r)
	}
}

func TestContainersTheManagersEndedAreStoppedAndRemovedAtOnce(t *testing.T) {
	rt := newFakeRuntime("img")
	clk := &clock{now: time.Unix(1000, 0)}
	c := newTestConverger(rt, clk)
	c.setDesired([]api.DesiredContainer{desired("a", "img"), desired("b", "img")})
	_ = c.converge(context.Background())
	rt.containers["orphan"] = runtime.Container{ID: "orphan", State: runtime.Running}

	// a's session ended; b still runs; the orphan is nobody's.
	c.setDesired([]api.DesiredContainer{desired("b", "img")}, "a")
	if err := c.converge(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.waitStops()
	if len(rt.removed) != 1 || rt.removed[0] != "a" {
		t.Fatalf("removed %v, want only a, at once (the orphan keeps its grace)", rt.removed)
	}
	got := reportByID(t, c)
	if _, ok := got["a"]; ok {
		t.Fatalf("a is still reported: %+v", got["a"])
	}
	if got["b"].Status != "running" || got["orphan"].Status != "running" {
		t.Fatalf("report %+v", got)
	}
	// Stopping again (the list stays until the managers change it) is harmless.
	err := c.converge(context.Background())
	c.waitStops()
	if err != nil || len(rt.removed) != 1 {
		t.Fatalf("second pass: err %v, removed %v", err, rt.removed)
	}
}

func TestAStopListNamingADesiredContainerIsIgnored(t *testing.T) {
	rt := newFakeRuntime("img")
	c := newTestConverger(rt, &clock{now: time.Unix(1000, 0)})
	c.setDesired([]api.DesiredContainer{desired("a", "img")}, "a")
	_ = c.converge(context.Background())
	_ = c.converge(context.Background())
	c.waitStops()
	if len(rt.runs) != 1 || len(rt.removed) != 0 {
		t.Fatalf("runs %d, removed %v: a desired container must run", len(rt.runs), rt.removed)
	}
}

func TestAnEmptyReportIsAnEmptyListNotNone(t *testing.T) {
	c := newTestConverger(newFakeRuntime("img"), &clock{now: time.Unix(1000, 0)})
	rs, err := c.report(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(api.AgentHeartbeat{Containers: rs})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"containers":[]`) {
		t.Fatalf("heartbeat %s: an agent running nothing must say so with an empty list", b)
	}
}

// A container found at start without a task lost its process with
// containerd or the node: it is removed, not started again, and reported
// gone with the reason, so the managers end its session.
func TestATasklessContainerFoundAtStartIsRemovedAndReportedGone(t *testing.T) {
	rt := newFakeRuntime("img")
	rt.containers["a"] = runtime.Container{ID: "a", SessionID: "s-a", State: runtime.Created}
	rt.containers["b"] = runtime.Container{ID: "b", SessionID: "s-b", State: runtime.Running}
	c := newTestConverger(rt, &clock{now: time.Unix(1000, 0)})
	existing, _ := rt.List(context.Background())
	c.adopt(existing)
	c.dropTaskless(context.Background(), existing)
	c.setDesired([]api.DesiredContainer{desired("a", "img"), desired("b", "img")})
	_ = c.converge(context.Background())
	if len(rt.runs) != 0 || !slices.Equal(rt.removed, []string{"a"}) {
		t.Fatalf("runs %v, removed %v: want only the taskless container removed and nothing started", rt.runs, rt.removed)
	}
	reports := reportByID(t, c)
	if r := reports["a"]; r.Status != "gone" || r.Reason != "its task was lost: containerd or the node restarted under it" {
		t.Fatalf("taskless container reported %+v", r)
	}
	if r := reports["b"]; r.Status != "running" {
		t.Fatalf("running container reported %+v", r)
	}
}
