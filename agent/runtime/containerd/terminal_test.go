package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
)

// syncBuffer is a process's output, written by the runtime's copy and read
// by the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output holds want, after what it held at from.
func waitFor(t *testing.T, out *syncBuffer, from int, want string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := out.String()
		if i := strings.Index(s[min(from, len(s)):], want); i >= 0 {
			return from + i + len(want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows %q", want, s[min(from, len(s)):])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionMembers lists the container's processes in the session led by
// pid, the leader included.
func sessionMembers(t *testing.T, rt *Runtime, id string, leader uint32) []uint32 {
	t.Helper()
	pids, err := rt.Pids(testCtx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for _, p := range pids {
		if p == leader || sessionOf(p) == leader {
			out = append(out, p)
		}
	}
	return out
}

func startUserContainer(t *testing.T, rt *Runtime) string {
	t.Helper()
	id := uniqueID("term")
	spec := baseSpec(id, "sleep", "300")
	spec.User = runtime.User{UID: 1000, GID: 1000}
	if _, err := rt.Run(testCtx(t), spec); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { rt.Remove(context.Background(), id) })
	return id
}

// A terminal is a shell on a pseudo-terminal of the size asked for, as the
// container's user; a resize reaches stty; the exit code comes back; and
// closing it ends the shell with everything it started, background jobs
// that ignore SIGHUP included.
func TestATerminalRunsAsTheContainersUserAndEndsWithEverythingItStarted(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)
	id := startUserContainer(t, rt)

	in, stdin := io.Pipe()
	out := &syncBuffer{}
	p, err := rt.StartExec(ctx, id, runtime.ExecOptions{Command: []string{"sh"}, TTY: true, Cols: 80, Rows: 24,
		Env: []string{"TERM=xterm-256color"}, Stdin: in, Stdout: out})
	if err != nil {
		t.Fatalf("StartExec: %v", err)
	}
	t.Cleanup(func() { stdin.Close(); p.Close() })
	fmt.Fprint(stdin, "echo hi-$(id -u); stty size; echo $TERM\n")
	at := waitFor(t, out, 0, "hi-1000")
	at = waitFor(t, out, at, "24 80")
	waitFor(t, out, at, "xterm-256color")

	if err := p.Resize(ctx, 132, 40); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	mark := len(out.String())
	fmt.Fprint(stdin, "stty size\n")
	waitFor(t, out, mark, "40 132")

	// What the shell starts, even what ignores the hang-up, is its
	// session's, and goes with it.
	mark = len(out.String())
	fmt.Fprint(stdin, "(trap '' HUP; exec sleep 1001) & sleep 1002 & echo started\n")
	waitFor(t, out, mark, "started")
	ep := p.(*execProcess)
	for deadline := time.Now().Add(10 * time.Second); len(sessionMembers(t, rt, id, ep.pid)) < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal's session has %v; want the shell and its two sleeps", sessionMembers(t, rt, id, ep.pid))
		}
	}
	if _, err := os.Stat(rt.terminalDir() + "/" + ep.recorded); err != nil {
		t.Fatalf("an open terminal is not recorded: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for left := sessionMembers(t, rt, id, ep.pid); len(left) > 0; left = sessionMembers(t, rt, id, ep.pid) {
		if time.Now().After(deadline) {
			t.Fatalf("processes of the closed terminal still run: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(rt.terminalDir() + "/" + ep.recorded); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a closed terminal is still recorded: %v", err)
	}
	if pids, _ := rt.Pids(ctx, id); len(pids) != 1 {
		t.Errorf("the container runs %v after the terminal closed; want its own process alone", pids)
	}
	if err := p.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}

	// exit 3 is the exit code.
	in2, stdin2 := io.Pipe()
	defer stdin2.Close()
	p2, err := rt.StartExec(ctx, id, runtime.ExecOptions{Command: []string{"sh"}, TTY: true, Cols: 80, Rows: 24, Stdin: in2, Stdout: io.Discard})
	if err != nil {
		t.Fatalf("StartExec: %v", err)
	}
	defer p2.Close()
	fmt.Fprint(stdin2, "exit 3\n")
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if code, err := p2.Wait(wctx); err != nil || code != 3 {
		t.Errorf("exit 3 gave %d, %v", code, err)
	}

	if _, err := rt.StartExec(ctx, id, runtime.ExecOptions{Command: []string{"/bin/no-such-shell"}, TTY: true, Stdout: io.Discard}); !errors.Is(err, runtime.ErrCommandNotFound) {
		t.Errorf("a missing shell: %v, want ErrCommandNotFound", err)
	}
	p2.Close()
	if entries, _ := os.ReadDir(rt.terminalDir()); len(entries) != 0 {
		for _, e := range entries {
			b, _ := os.ReadFile(rt.terminalDir() + "/" + e.Name())
			t.Errorf("terminal record left: %s: %s", e.Name(), b)
		}
	}
}

// An agent that died with a terminal open leaves processes that ignore the
// hang-up; the next Runtime on the same state ends them.
func TestANewRuntimeEndsTheTerminalsADeadOneLeft(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)
	id := startUserContainer(t, rt)

	in, stdin := io.Pipe()
	out := &syncBuffer{}
	p, err := rt.StartExec(ctx, id, runtime.ExecOptions{Command: []string{"sh", "-c", "(trap '' HUP; exec sleep 1003) & echo ready; wait"},
		TTY: true, Cols: 80, Rows: 24, Stdin: in, Stdout: out})
	if err != nil {
		t.Fatalf("StartExec: %v", err)
	}
	waitFor(t, out, 0, "ready")
	leader := p.(*execProcess).pid
	if got := sessionMembers(t, rt, id, leader); len(got) != 2 {
		t.Fatalf("the terminal's session has %v; want the shell and its sleep", got)
	}
	// The agent dies: nothing closes the terminal.
	defer stdin.Close()
	rt.Close()
	rt2 := e.runtime(t) // sweeps at its start
	// SIGKILL is sent by the sweep; the processes are gone once the kernel
	// has delivered it, a moment later under load.
	deadline := time.Now().Add(10 * time.Second)
	for left := sessionMembers(t, rt2, id, leader); len(left) != 0; left = sessionMembers(t, rt2, id, leader) {
		if time.Now().After(deadline) {
			t.Fatalf("the dead agent's terminal still runs %v 10 s after a new runtime started", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if entries, _ := os.ReadDir(rt2.terminalDir()); len(entries) != 0 {
		t.Errorf("terminal records left: %v", entries)
	}
}

func TestStatSession(t *testing.T) {
	for stat, want := range map[string]uint32{
		"1234 (sh) S 1 1234 1234 34816 1234 4194560": 1234,
		"77 (a (weird) name) R 5 6 7 0":              7,
		"garbage":                                    0,
		"5 (x) S 1":                                  0,
	} {
		if got := statSession([]byte(stat)); got != want {
			t.Errorf("statSession(%q) = %d, want %d", stat, got, want)
		}
	}
}

// The output since a time starts at the length the runtime noted last
// before it.
func TestLogsSinceATime(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)
	id := uniqueID("since")
	if _, err := rt.Run(ctx, baseSpec(id, "sh", "-c", "echo one; sleep 4; echo two; exec sleep 300")); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { rt.Remove(context.Background(), id) })
	read := func(since time.Time) string {
		t.Helper()
		rc, err := rt.Logs(ctx, id, since)
		if err != nil {
			t.Fatalf("Logs(since %v): %v", since, err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}
	var sawOne, sawTwo time.Time
	deadline := time.Now().Add(30 * time.Second)
	for sawTwo.IsZero() {
		s := read(time.Time{})
		if sawOne.IsZero() && strings.Contains(s, "one") {
			sawOne = time.Now()
		}
		if strings.Contains(s, "two") {
			sawTwo = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log is %q", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sawTwo.Sub(sawOne) < 3*time.Second {
		t.Fatalf("one and two came %v apart; the test needs the 4 s the container sleeps", sawTwo.Sub(sawOne))
	}
	// Notes come every second: one after "one" long before two was
	// written, the next after it.
	time.Sleep(2 * logClockEvery)
	if got := read(sawTwo.Add(-1500 * time.Millisecond)); got != "two\n" {
		t.Errorf("since just before two: %q, want two alone", got)
	}
	if got := read(sawOne.Add(-time.Minute)); got != "one\ntwo\n" {
		t.Errorf("since before it all: %q", got)
	}
	if got := read(time.Now().Add(time.Hour)); got != "" {
		t.Errorf("since a time to come: %q, want nothing", got)
	}
	// The notes go with the log when the container is removed.
	if err := rt.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := read(sawTwo.Add(-1500 * time.Millisecond)); got != "two\n" {
		t.Errorf("an ended container's log since just before two: %q", got)
	}
}
