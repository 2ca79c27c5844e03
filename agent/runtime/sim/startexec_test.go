package sim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
)

func TestAFollowedLogGetsTheExitLineOnceTheContainerEnds(t *testing.T) {
	r, clock := newSim(t, Config{})
	run(t, r, spec("c1", "sleep", "5"))
	rc, err := r.Logs(context.Background(), "c1", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	first, _ := io.ReadAll(rc)
	if !strings.Contains(string(first), "started") || strings.Contains(string(first), "exited") {
		t.Fatalf("before the end:\n%s", first)
	}
	clock.Advance(5 * time.Second)
	rest, _ := io.ReadAll(rc) // reading on after io.EOF
	if !strings.HasPrefix(string(rest), "[berth-sim] ") || !strings.Contains(string(rest), "exited with code 0") || strings.Contains(string(rest), "started") {
		t.Fatalf("read on after the end, want only the exit line:\n%s", rest)
	}
}

func TestLogsSinceDropTheLinesWrittenBefore(t *testing.T) {
	r, clock := newSim(t, Config{})
	run(t, r, spec("c1", "sleep", "5"))
	clock.Advance(5 * time.Second)
	for _, tc := range []struct {
		name         string
		since        time.Time
		start, exits bool
	}{
		{"zero: everything", time.Time{}, true, true},
		{"before the start: everything", clock.Now().Add(-time.Hour), true, true},
		{"after the start: the exit line", clock.Now().Add(-time.Second), false, true},
		{"after the exit: nothing", clock.Now().Add(time.Second), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := r.Logs(context.Background(), "c1", tc.since)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			if got := strings.Contains(string(b), "started"); got != tc.start {
				t.Errorf("start line %v, want %v:\n%s", got, tc.start, b)
			}
			if got := strings.Contains(string(b), "exited"); got != tc.exits {
				t.Errorf("exit line %v, want %v:\n%s", got, tc.exits, b)
			}
		})
	}
}

func TestStartExecRunsWhatTheSimulationCanReadAndRefusesTheRest(t *testing.T) {
	r, clock := newSim(t, Config{})
	run(t, r, spec("c1", "sleep", "infinity"))
	ctx := context.Background()

	var out bytes.Buffer
	p, err := r.StartExec(ctx, "c1", runtime.ExecOptions{Command: []string{"echo", "hello", "there"}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(ctx); err != nil || code != 0 || out.String() != "hello there\n" {
		t.Fatalf("echo: code %d, %v, output %q", code, err, out.String())
	}
	if err := p.Resize(ctx, 80, 24); err == nil {
		t.Fatal("resizing a process without a terminal succeeded")
	}

	p, err = r.StartExec(ctx, "c1", runtime.ExecOptions{Command: []string{"sh", "-c", "sleep 3; exit 4"}})
	if err != nil {
		t.Fatal(err)
	}
	clock.waitForCalls(t, 1)
	clock.Advance(3 * time.Second)
	if code, err := p.Wait(ctx); err != nil || code != 4 {
		t.Fatalf("sleep then exit 4: code %d, %v", code, err)
	}

	p, err = r.StartExec(ctx, "c1", runtime.ExecOptions{Command: []string{"sleep", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.Wait(ctx); code != 137 {
		t.Fatalf("a closed process exited with %d, want 137 (killed)", code)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	stdin, w := io.Pipe()
	_, err = r.StartExec(ctx, "c1", runtime.ExecOptions{Command: []string{"/bin/sh"}, TTY: true, Stdin: stdin})
	if !errors.Is(err, runtime.ErrCommandNotFound) || !strings.Contains(err.Error(), "simulated") {
		t.Fatalf("a terminal in a simulated container: %v, want ErrCommandNotFound saying why", err)
	}
	if _, err := w.Write([]byte("x")); err != nil { // stdin is still read after the failure
		t.Fatalf("stdin not read after a failed start: %v", err)
	}
	w.Close()

	if _, err := r.StartExec(ctx, "nope", runtime.ExecOptions{Command: []string{"echo"}}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("exec in an unknown container: %v", err)
	}
}
