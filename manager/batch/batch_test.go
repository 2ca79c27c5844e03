package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a Func over ints that answers "r<item>" and reports each
// call's items as it starts; with a gate, every call then waits for one
// value on it (or its context's end) before it answers.
type recorder struct {
	started chan []int
	gate    chan struct{}
	// fail, when set, decides each call's error after the gate.
	fail func() error
}

func newRecorder(gated bool) *recorder {
	r := &recorder{started: make(chan []int, 100)}
	if gated {
		r.gate = make(chan struct{})
	}
	return r
}

func (r *recorder) call(ctx context.Context, items []int) ([]string, error) {
	r.started <- slices.Clone(items)
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if r.fail != nil {
		if err := r.fail(); err != nil {
			return nil, err
		}
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = fmt.Sprintf("r%d", it)
	}
	return out, nil
}

// nextCall is the items of the next call to start.
func (r *recorder) nextCall(t *testing.T) []int {
	t.Helper()
	select {
	case items := <-r.started:
		return items
	case <-time.After(5 * time.Second):
		t.Fatal("no call started")
		return nil
	}
}

func (r *recorder) noCall(t *testing.T) {
	t.Helper()
	select {
	case items := <-r.started:
		t.Fatalf("a call of %v started", items)
	case <-time.After(50 * time.Millisecond):
	}
}

type outcome struct {
	val string
	err error
}

// doAsync runs Do in a goroutine.
func doAsync(ctx context.Context, b *Batcher[int, string], item int) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		v, err := b.Do(ctx, item)
		ch <- outcome{v, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("Do did not return")
		return outcome{}
	}
}

// waitQueued waits until n requests are queued, so the test controls the
// arrival order.
func waitQueued(t *testing.T, b *Batcher[int, string], n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		got := len(b.queue)
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// queueMany queues items in order behind whatever is queued already.
func queueMany(t *testing.T, b *Batcher[int, string], items ...int) []<-chan outcome {
	t.Helper()
	var out []<-chan outcome
	for _, it := range items {
		out = append(out, doAsync(context.Background(), b, it))
		waitQueued(t, b, len(out))
	}
	return out
}

func start(t *testing.T, opt Options, r *recorder) *Batcher[int, string] {
	b := New(opt, r.call)
	t.Cleanup(b.Close)
	return b
}

func TestLoneRequestIsCalledAtOnceAndAlone(t *testing.T) {
	r := newRecorder(false)
	b := start(t, Options{}, r)
	v, err := b.Do(context.Background(), 7)
	if err != nil || v != "r7" {
		t.Fatalf("Do = %q, %v", v, err)
	}
	if got := r.nextCall(t); !slices.Equal(got, []int{7}) {
		t.Errorf("call %v, want [7]", got)
	}
}

func TestArrivalsDuringACallGoIntoTheNextInArrivalOrder(t *testing.T) {
	r := newRecorder(true)
	b := start(t, Options{}, r)
	first := doAsync(context.Background(), b, 0)
	r.nextCall(t)
	queued := queueMany(t, b, 5, 3, 1, 4, 2)
	r.noCall(t) // the only slot is busy
	r.gate <- struct{}{}
	if o := wait(t, first); o.val != "r0" || o.err != nil {
		t.Errorf("first: %+v", o)
	}
	if got := r.nextCall(t); !slices.Equal(got, []int{5, 3, 1, 4, 2}) {
		t.Errorf("second call %v, want the queue in arrival order", got)
	}
	r.gate <- struct{}{}
	for i, it := range []int{5, 3, 1, 4, 2} {
		if o := wait(t, queued[i]); o.val != fmt.Sprintf("r%d", it) || o.err != nil {
			t.Errorf("item %d: %+v", it, o)
		}
	}
}

func TestMaxItemsSplitsTheQueue(t *testing.T) {
	r := newRecorder(true)
	b := start(t, Options{MaxItems: 2}, r)
	doAsync(context.Background(), b, 0)
	r.nextCall(t)
	queueMany(t, b, 1, 2, 3, 4, 5)
	var calls [][]int
	for range 4 {
		r.gate <- struct{}{}
		if len(calls) < 3 {
			calls = append(calls, r.nextCall(t))
		}
	}
	if want := [][]int{{1, 2}, {3, 4}, {5}}; !slices.EqualFunc(calls, want, slices.Equal) {
		t.Errorf("calls %v, want %v", calls, want)
	}
}

func TestInFlightCallsRunTogether(t *testing.T) {
	r := newRecorder(true)
	b := start(t, Options{InFlight: 2}, r)
	doAsync(context.Background(), b, 0)
	r.nextCall(t)
	doAsync(context.Background(), b, 1)
	if got := r.nextCall(t); !slices.Equal(got, []int{1}) {
		t.Errorf("second call %v while the first is in flight, want [1]", got)
	}
	queueMany(t, b, 2)
	r.noCall(t)
	r.gate <- struct{}{}
	if got := r.nextCall(t); !slices.Equal(got, []int{2}) {
		t.Errorf("third call %v", got)
	}
	close(r.gate)
}

// TestOneItemsFailureIsItsAlone: a result may carry one item's failure
// (a refused session); only that waiter sees it.
func TestOneItemsFailureIsItsAlone(t *testing.T) {
	refused := errors.New("refused")
	b := New(Options{}, func(_ context.Context, items []int) ([]error, error) {
		out := make([]error, len(items))
		for i, it := range items {
			if it == 2 {
				out[i] = refused
			}
		}
		return out, nil
	})
	defer b.Close()
	for _, it := range []int{1, 2, 3} {
		got, err := b.Do(context.Background(), it)
		if err != nil || (it == 2) != (got == refused) {
			t.Errorf("item %d: %v, %v", it, got, err)
		}
	}
}

func TestAFailedCallFailsOnlyItsOwnItems(t *testing.T) {
	r := newRecorder(true)
	boom := errors.New("boom")
	var calls atomic.Int32
	r.fail = func() error {
		if calls.Add(1) == 1 {
			return boom
		}
		return nil
	}
	b := start(t, Options{}, r)
	first := doAsync(context.Background(), b, 0)
	r.nextCall(t)
	queued := queueMany(t, b, 1, 2)
	close(r.gate)
	if o := wait(t, first); !errors.Is(o.err, boom) {
		t.Errorf("first: %+v, want boom", o)
	}
	for i, ch := range queued {
		if o := wait(t, ch); o.err != nil || o.val != fmt.Sprintf("r%d", i+1) {
			t.Errorf("item %d: %+v", i+1, o)
		}
	}
}

func TestACancelledWaiterIsLeftOutAndTheOthersAnswered(t *testing.T) {
	r := newRecorder(true)
	b := start(t, Options{}, r)
	doAsync(context.Background(), b, 0)
	r.nextCall(t)
	one := doAsync(context.Background(), b, 1)
	waitQueued(t, b, 1)
	ctx, cancel := context.WithCancel(context.Background())
	gone := doAsync(ctx, b, 2)
	waitQueued(t, b, 2)
	three := doAsync(context.Background(), b, 3)
	waitQueued(t, b, 3)
	cancel()
	// It returns at once, not when a call takes or answers it, and says
	// its item was never sent.
	if o := wait(t, gone); !errors.Is(o.err, context.Canceled) || errors.Is(o.err, ErrInFlight) {
		t.Errorf("cancelled while queued: %+v, want context.Canceled alone", o)
	}
	r.gate <- struct{}{}
	if got := r.nextCall(t); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("next call %v, want the cancelled item left out", got)
	}
	r.gate <- struct{}{}
	if o1, o3 := wait(t, one), wait(t, three); o1.val != "r1" || o3.val != "r3" {
		t.Errorf("answers %+v %+v", o1, o3)
	}
}

func TestCancellingAWaiterInFlightDoesNotCancelTheCall(t *testing.T) {
	var callCtx atomic.Pointer[context.Context]
	r := newRecorder(true)
	b := New(Options{}, func(ctx context.Context, items []int) ([]string, error) {
		callCtx.Store(&ctx)
		return r.call(ctx, items)
	})
	t.Cleanup(b.Close)
	doAsync(context.Background(), b, 0)
	r.nextCall(t)
	ctx, cancel := context.WithCancel(context.Background())
	gone := doAsync(ctx, b, 1)
	waitQueued(t, b, 1)
	stays := doAsync(context.Background(), b, 2)
	waitQueued(t, b, 2)
	r.gate <- struct{}{}
	if got := r.nextCall(t); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("call %v", got)
	}
	cancel()
	// Its item was sent: it may still take effect, and the error says so.
	if o := wait(t, gone); !errors.Is(o.err, context.Canceled) || !errors.Is(o.err, ErrInFlight) {
		t.Errorf("cancelled in flight: %+v, want ErrInFlight and context.Canceled", o)
	}
	if err := (*callCtx.Load()).Err(); err != nil {
		t.Errorf("the call's context ended with a waiter's: %v", err)
	}
	r.gate <- struct{}{}
	if o := wait(t, stays); o.val != "r2" || o.err != nil {
		t.Errorf("the other waiter: %+v", o)
	}
}

// TestLeadershipLossFailsTheCallInFlightAndEveryQueuedRequest: the
// manager's call refuses when it no longer leads; what was in flight and
// everything queued behind it gets that error, and nothing hangs.
func TestLeadershipLossFailsTheCallInFlightAndEveryQueuedRequest(t *testing.T) {
	errNotLeader := errors.New("not the leader")
	var leader atomic.Bool
	leader.Store(true)
	r := newRecorder(true)
	r.fail = func() error {
		if !leader.Load() {
			return errNotLeader
		}
		return nil
	}
	b := start(t, Options{MaxItems: 2}, r)
	first := doAsync(context.Background(), b, 0)
	r.nextCall(t)
	queued := queueMany(t, b, 1, 2, 3, 4, 5)
	leader.Store(false)
	close(r.gate)
	for i, ch := range append([]<-chan outcome{first}, queued...) {
		if o := wait(t, ch); !errors.Is(o.err, errNotLeader) {
			t.Errorf("item %d: %+v, want not the leader", i, o)
		}
	}
}

func TestCloseFailsQueuedAndLaterRequests(t *testing.T) {
	r := newRecorder(true)
	b := New(Options{}, r.call)
	inFlight := doAsync(context.Background(), b, 0)
	r.nextCall(t)
	queued := queueMany(t, b, 1)
	b.Close()
	if o := wait(t, queued[0]); !errors.Is(o.err, ErrClosed) {
		t.Errorf("queued: %+v, want ErrClosed", o)
	}
	if o := wait(t, inFlight); !errors.Is(o.err, context.Canceled) {
		t.Errorf("in flight: %+v, want its call cancelled", o)
	}
	if _, err := b.Do(context.Background(), 2); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	b.Close() // twice is harmless
}

// BenchmarkLoneDo is what the batcher adds to a request that arrives
// alone: the handoff to the loop and the call's goroutine and back, with a
// call that costs nothing.
func BenchmarkLoneDo(b *testing.B) {
	bt := New(Options{}, func(_ context.Context, items []int) ([]int, error) { return items, nil })
	defer bt.Close()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if _, err := bt.Do(ctx, i); err != nil {
			b.Fatal(err)
		}
	}
}
