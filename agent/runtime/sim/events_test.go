package sim

import (
	"context"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
)

// next is the next event, within a deadline.
func next(t *testing.T, ch <-chan runtime.Event) runtime.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return runtime.Event{}
	}
}

// The simulated runtime publishes what containerd would: a start, the exit
// of a container that ends by itself (when the clock reaches it), a stop's
// exit and a removal.
func TestTheSimulatedRuntimePublishesItsContainersEvents(t *testing.T) {
	r, clock := newSim(t, Config{})
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	events := r.Events(ctx)

	run(t, r, spec("short", "sleep", "5"))
	if ev := next(t, events); ev != (runtime.Event{ID: "short", Kind: runtime.EventStarted}) {
		t.Fatalf("event %+v, want short started", ev)
	}
	clock.waitForCalls(t, 1) // its exit waits on the clock
	run(t, r, spec("long", "sleep", "infinity"))
	if ev := next(t, events); ev != (runtime.Event{ID: "long", Kind: runtime.EventStarted}) {
		t.Fatalf("event %+v, want long started", ev)
	}
	clock.Advance(5 * time.Second)
	if ev := next(t, events); ev != (runtime.Event{ID: "short", Kind: runtime.EventExited}) {
		t.Fatalf("event %+v, want short exited", ev)
	}
	if err := r.Stop(context.Background(), "long", time.Second); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev != (runtime.Event{ID: "long", Kind: runtime.EventExited}) {
		t.Fatalf("event %+v, want long exited", ev)
	}
	if err := r.Remove(context.Background(), "long"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev != (runtime.Event{ID: "long", Kind: runtime.EventDeleted}) {
		t.Fatalf("event %+v, want long deleted", ev)
	}
	cancel()
	for range events { // drained and closed once ctx ended
	}
}
