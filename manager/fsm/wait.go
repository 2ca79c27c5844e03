package fsm

import (
	"context"
	"sync"
)

// indexWatch lets readers wait for the applied index to move (blocking
// queries). A channel is made only while someone waits, and closed (all
// waiters woken at once) by the next apply, so an apply with no waiters costs
// one uncontended lock and no allocation.
type indexWatch struct {
	mu      sync.Mutex
	changed chan struct{} // nil while nobody waits
}

func (w *indexWatch) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	return w.changed
}

func (w *indexWatch) notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

// advance records index as applied and wakes the waiters.
func (f *FSM) advance(index uint64) {
	f.applied.Store(index)
	f.watch.notify()
}

// WaitIndex returns the applied index as soon as it is greater than after.
// When ctx ends first it returns the applied index of that moment with
// ctx's error.
func (f *FSM) WaitIndex(ctx context.Context, after uint64) (uint64, error) {
	for {
		// The channel is taken before the index is read: an apply that
		// lands between the two closes this very channel, so no wake-up
		// is missed.
		ch := f.watch.wait()
		if idx := f.applied.Load(); idx > after {
			return idx, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return f.applied.Load(), ctx.Err()
		}
	}
}
