package runtime

import (
	"context"
	"testing"
	"time"
)

// Every subscriber gets every event published while it is subscribed, and
// its channel closes when its context ends; nothing is sent to it after.
func TestAFeedGivesEverySubscriberEveryEventAndClosesWithItsContext(t *testing.T) {
	var f Feed
	if f.Subscribed() {
		t.Fatal("a new feed says it has subscribers")
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	a, b := f.Subscribe(ctx1), f.Subscribe(ctx2)
	if !f.Subscribed() {
		t.Fatal("a feed with readers says it has none")
	}
	f.Publish(Event{ID: "c1", Kind: EventStarted})
	f.Publish(Event{ID: "c1", Kind: EventExited})
	for name, ch := range map[string]<-chan Event{"a": a, "b": b} {
		for _, want := range []Event{{ID: "c1", Kind: EventStarted}, {ID: "c1", Kind: EventExited}} {
			select {
			case got := <-ch:
				if got != want {
					t.Fatalf("subscriber %s got %+v, want %+v", name, got, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("subscriber %s never got %+v", name, want)
			}
		}
	}
	cancel1()
	select {
	case _, ok := <-a:
		if ok {
			t.Fatal("an event reached a subscriber after its context ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the channel of an ended subscription was not closed")
	}
	f.Publish(Event{ID: "c2", Kind: EventStarted}) // must not panic on the closed channel
	if got := <-b; got.ID != "c2" {
		t.Fatalf("the remaining subscriber got %+v", got)
	}
}

// A subscriber that does not read loses what does not fit its buffer; the
// runtime publishing is never held up by it.
func TestASlowSubscriberNeverHoldsUpTheRuntime(t *testing.T) {
	var f Feed
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.Subscribe(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 * EventBuffer {
			f.Publish(Event{ID: "c", Kind: EventStarted})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publishing blocked on a subscriber that does not read")
	}
	if n := len(ch); n != EventBuffer {
		t.Fatalf("the slow subscriber holds %d events, want its buffer (%d) full", n, EventBuffer)
	}
}
