package agent

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// An agent on a simulated runtime says so in every registration; one on a
// real runtime does not.
func TestASimulatedAgentSaysSoWhenItRegisters(t *testing.T) {
	for _, simulated := range []bool{true, false} {
		mgr := newFakeManager()
		a, err := New(Config{StateDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", HeartbeatEvery: 20 * time.Millisecond,
			DesiredWait: 200 * time.Millisecond, Runtime: newFakeRuntime(), Host: fakeHost{}, Manager: mgr,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Simulated: simulated})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		eventually(t, 5*time.Second, func() error {
			if _, n := mgr.lastHeartbeat(); n == 0 {
				return context.DeadlineExceeded
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		regs, _ := mgr.registrations()
		if len(regs) != 1 || regs[0].Simulated != simulated {
			t.Fatalf("simulated=%v: registrations %+v", simulated, regs)
		}
	}
}

// StartAfter holds the whole agent back (agents of one process start
// spread over the heartbeat interval): it registers no sooner; stopped
// meanwhile, it returns at once and the managers never heard of it.
func TestStartAfterHoldsTheAgentBack(t *testing.T) {
	run := func(after time.Duration) (*fakeManager, context.CancelFunc, chan error) {
		mgr := newFakeManager()
		a, err := New(Config{StateDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", HeartbeatEvery: 20 * time.Millisecond, Runtime: newFakeRuntime(),
			Host: fakeHost{}, Manager: mgr, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), StartAfter: after})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return mgr, cancel, done
	}
	began := time.Now()
	mgr, _, _ := run(300 * time.Millisecond)
	eventually(t, 10*time.Second, func() error {
		if regs, _ := mgr.registrations(); len(regs) == 0 {
			return context.DeadlineExceeded
		}
		return nil
	})
	if waited := time.Since(began); waited < 300*time.Millisecond {
		t.Fatalf("registered %s after Run, before StartAfter's 300ms", waited)
	}

	held, cancel, done := run(time.Hour)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when stopped during StartAfter")
	}
	if regs, _ := held.registrations(); len(regs) != 0 {
		t.Fatalf("registered during StartAfter: %+v", regs)
	}
}
