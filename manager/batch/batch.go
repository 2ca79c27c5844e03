// Package batch turns many concurrent requests into few calls. Requests
// queue while earlier calls are in flight; as soon as a call slot is free,
// one goroutine takes everything queued (up to a maximum), in arrival
// order, makes one call for all of it and hands each waiter its own result.
// There is no timer: an idle batcher takes a lone request the moment it
// arrives, so batching costs it nothing, and under load the batches grow
// by themselves with the time one call takes.
//
// The manager uses it to propose the session creates that arrive together
// as one Raft entry (fsm.SessionsCreate), which costs one round trip and
// one FSM transaction instead of one each.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrClosed answers the requests a closing batcher will not call for.
var ErrClosed = errors.New("batch: the batcher is closed")

// ErrInFlight is what Do returns, with the context's error, when the
// request gave up after its item went into a call: the call may still take
// effect (a Raft entry may still commit), so the request must not be sent
// again blindly. A request that gives up before that gets the context's
// error alone: its item was never sent.
var ErrInFlight = errors.New("batch: gave up waiting after the item was sent")

// Func makes one call for items and returns one result per item, in the
// items' order. A result may carry its item's own failure; an error fails
// every item of the call.
type Func[T, R any] func(ctx context.Context, items []T) ([]R, error)

// Options size a batcher; zero values take the defaults.
type Options struct {
	// MaxItems is the most items in one call (default 256).
	MaxItems int
	// InFlight is how many calls may run at once (default 1). Each call in
	// flight is time for the next batch to fill.
	InFlight int
}

// Batcher gathers Do's items into calls of its Func.
type Batcher[T, R any] struct {
	call Func[T, R]
	opt  Options

	mu     sync.Mutex
	queue  []*waiter[T, R] // arrival order
	closed bool

	// wake holds one token when the queue may have grown since the loop
	// last looked: Do never blocks on it, and the loop never sleeps while
	// items wait.
	wake chan struct{}
	// ctx is every call's context: Close ends it, no waiter's does, so one
	// request that gives up cannot cancel the call the others wait on.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // the loop and every call returned
}

type waiter[T, R any] struct {
	ctx  context.Context
	item T
	// taken (the item went into a call) and abandoned (its request gave up
	// first) are set under the batcher's lock, so never both: Do can tell
	// whether what it gives up on was sent.
	taken, abandoned bool
	// out has room for the one answer, so a call never blocks on a
	// waiter that left.
	out chan result[R]
}

type result[R any] struct {
	val R
	err error
}

// New starts a batcher; Close stops it.
func New[T, R any](opt Options, call Func[T, R]) *Batcher[T, R] {
	if opt.MaxItems <= 0 {
		opt.MaxItems = 256
	}
	if opt.InFlight <= 0 {
		opt.InFlight = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher[T, R]{call: call, opt: opt, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go b.run()
	return b
}

// Do queues item for the next call and waits for its result. When ctx ends
// first, an item not yet taken is left out of the calls and Do returns
// ctx's error; one already taken may still take effect, and Do returns
// ErrInFlight with ctx's error.
func (b *Batcher[T, R]) Do(ctx context.Context, item T) (R, error) {
	var zero R
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	w := &waiter[T, R]{ctx: ctx, item: item, out: make(chan result[R], 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return zero, ErrClosed
	}
	b.queue = append(b.queue, w)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default: // a token is already there
	}
	select {
	case r := <-w.out:
		return r.val, r.err
	case <-ctx.Done():
		return b.giveUp(w)
	}
}

// giveUp ends a wait whose context ended: the item stays out of every call
// unless one took it already.
func (b *Batcher[T, R]) giveUp(w *waiter[T, R]) (R, error) {
	var zero R
	b.mu.Lock()
	taken := w.taken
	w.abandoned = !taken
	b.mu.Unlock()
	if !taken {
		return zero, w.ctx.Err()
	}
	// An answer that came at the same moment is still the answer.
	select {
	case r := <-w.out:
		return r.val, r.err
	default:
		return zero, fmt.Errorf("%w: %w", ErrInFlight, w.ctx.Err())
	}
}

// Close fails what is queued with ErrClosed, ends the calls in flight
// (their context is cancelled) and waits for them.
func (b *Batcher[T, R]) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.done
		return
	}
	b.closed = true
	queued := b.queue
	b.queue = nil
	b.mu.Unlock()
	b.cancel()
	for _, w := range queued {
		w.out <- result[R]{err: ErrClosed}
	}
	<-b.done
}

// run takes a call slot, then a batch, and starts the call: the batch is
// taken only once a slot is free, so everything that arrived while all
// slots were busy goes into it.
func (b *Batcher[T, R]) run() {
	defer close(b.done)
	var calls sync.WaitGroup
	defer calls.Wait()
	slots := make(chan struct{}, b.opt.InFlight)
	for {
		select {
		case slots <- struct{}{}:
		case <-b.ctx.Done():
			return
		}
		batch, ok := b.next()
		if !ok {
			return
		}
		calls.Add(1)
		go func() {
			defer calls.Done()
			defer func() { <-slots }()
			b.callFor(batch)
		}()
	}
}

// next waits until something is queued and takes it; false once closed.
func (b *Batcher[T, R]) next() ([]*waiter[T, R], bool) {
	for {
		if batch := b.take(); len(batch) > 0 {
			return batch, true
		}
		select {
		case <-b.wake:
		case <-b.ctx.Done():
			return nil, false
		}
	}
}

// take removes up to MaxItems waiters from the head of the queue, leaving
// out those whose request already ended (Do answers them itself).
func (b *Batcher[T, R]) take() []*waiter[T, R] {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*waiter[T, R]
	n := 0
	for ; n < len(b.queue) && len(batch) < b.opt.MaxItems; n++ {
		w := b.queue[n]
		if w.abandoned || w.ctx.Err() != nil {
			w.abandoned = true
			continue
		}
		w.taken = true
		batch = append(batch, w)
	}
	// Copied down rather than resliced, so the array does not creep
	// forward and keep every taken waiter reachable.
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

// callFor makes the call for a batch and answers each of its waiters.
func (b *Batcher[T, R]) callFor(batch []*waiter[T, R]) {
	items := make([]T, len(batch))
	for i, w := range batch {
		items[i] = w.item
	}
	rs, err := b.call(b.ctx, items)
	if err == nil && len(rs) != len(batch) {
		err = fmt.Errorf("batch: the call returned %d results for %d items", len(rs), len(batch))
	}
	for i, w := range batch {
		if err != nil {
			w.out <- result[R]{err: err}
			continue
		}
		w.out <- result[R]{val: rs[i]}
	}
}
