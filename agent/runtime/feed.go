package runtime

import (
	"context"
	"sync"
)

// Feed hands a runtime's events to the readers of its Events: every
// subscriber gets every event, and one that fell EventBuffer behind loses
// the event instead of holding up the runtime. The zero Feed is ready.
type Feed struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// Subscribe returns a channel of the events published from now until ctx
// ends; then the channel is closed.
func (f *Feed) Subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, EventBuffer)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[chan Event]struct{}{}
	}
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, ch)
		close(ch) // under the lock: Publish never sends on it again
		f.mu.Unlock()
	}()
	return ch
}

// Publish gives ev to every subscriber that has room for it.
func (f *Feed) Publish(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Subscribed tells whether anyone reads the events (a runtime may skip
// the work of making them otherwise).
func (f *Feed) Subscribed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs) > 0
}
