package containerd

import (
	"context"
	"testing"
	"time"

	apievents "github.com/containerd/containerd/api/events"

	"github.com/berth-cluster/berth/agent/runtime"
)

// waitEvent reads events until one of id and kind arrives, within a
// deadline, and returns the kinds seen for id before it.
func waitEvent(t *testing.T, events <-chan runtime.Event, id string, kind runtime.EventKind) []runtime.EventKind {
	t.Helper()
	var seen []runtime.EventKind
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.ID != id {
				continue
			}
			if ev.Kind == kind {
				return seen
			}
			seen = append(seen, ev.Kind)
		case <-deadline:
			t.Fatalf("no %s event for %s (saw %v)", kind, id, seen)
		}
	}
}

// containerd's task events reach Events: a start, the exit of a task that
// ends by itself, the exit of a stopped one, an OOM kill, the deletion.
func TestContainerdEventsReachTheRuntimesReaders(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	events := rt.Events(sub)

	short := uniqueID("short")
	if _, err := rt.Run(ctx, baseSpec(short, "sh", "-c", "exit 3")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, short, runtime.EventStarted)
	waitEvent(t, events, short, runtime.EventExited)

	long := uniqueID("long")
	if _, err := rt.Run(ctx, baseSpec(long, "sleep", "300")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, long, runtime.EventStarted)
	if err := rt.Stop(ctx, long, 0); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, long, runtime.EventExited)
	if err := rt.Remove(ctx, long); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, long, runtime.EventDeleted)

	oom := uniqueID("oom")
	s := baseSpec(oom, "sh", "-c", "head -c 100000000 /dev/zero | tail")
	s.MemoryBytes = 64 << 20
	if _, err := rt.Run(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, oom, runtime.EventOOM)
	waitEvent(t, events, oom, runtime.EventExited)
	if c := waitExited(t, rt, oom, 10*time.Second); !c.OOMKilled {
		t.Fatalf("after the OOM event the container is listed %+v, want OOMKilled", c)
	}
}

// An exec's process exits (and is deleted) under its container's id too;
// only the task's own process, whose id is the container's, is the
// container's event.
func TestAnExecsEndIsNotTheContainers(t *testing.T) {
	r := &Runtime{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := r.Events(ctx)
	r.handleEvent(ctx, &apievents.TaskExit{ContainerID: "c1", ID: "exec-1", ExitStatus: 0})
	r.handleEvent(ctx, &apievents.TaskDelete{ContainerID: "c1", ID: "exec-1"})
	r.handleEvent(ctx, &apievents.TaskExit{ContainerID: "c1", ID: "c1", ExitStatus: 137})
	r.handleEvent(ctx, &apievents.ContainerDelete{ID: "c1"})
	want := []runtime.Event{{ID: "c1", Kind: runtime.EventExited}, {ID: "c1", Kind: runtime.EventDeleted}}
	for _, w := range want {
		if got := <-events; got != w {
			t.Fatalf("event %+v, want %+v", got, w)
		}
	}
	select {
	case ev := <-events:
		t.Fatalf("an extra event %+v", ev)
	default:
	}
}
