package sim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
)

// Exec implements runtime.Runtime for the commands the simulation can
// read: `exit N` and `sh -c 'exit N'` return N, `sleep N` returns 0 after
// N seconds (or fails with context.DeadlineExceeded past timeout, as the
// containerd runtime does), `echo WORDS` prints them. Anything else is not
// run, and says so with sh's "not found" code, 127: a simulated container
// has no programs.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (runtime.ExecResult, error) {
	in, echo, err := r.execCommand(id, cmd)
	switch {
	case err != nil:
		return runtime.ExecResult{}, err
	case echo:
		return runtime.ExecResult{Stdout: []byte(strings.Join(cmd[1:], " ") + "\n"), Stderr: []byte{}}, nil
	case in.kind == forever:
		return runtime.ExecResult{ExitCode: 127, Stdout: []byte{}, Stderr: []byte("berth-sim: " + notRun(cmd) + "\n")}, nil
	}
	if in.runs > 0 {
		var deadline <-chan time.Time
		if timeout > 0 {
			deadline = r.cfg.Clock.After(timeout)
		}
		select {
		case <-r.cfg.Clock.After(in.runs):
		case <-deadline:
			return runtime.ExecResult{}, fmt.Errorf("exec in %s: %q ran past %s: %w", id, cmd, timeout, context.DeadlineExceeded)
		case <-ctx.Done():
			return runtime.ExecResult{}, fmt.Errorf("exec in %s: %w", id, ctx.Err())
		}
	}
	return runtime.ExecResult{ExitCode: in.code, Stdout: []byte{}, Stderr: []byte{}}, nil
}

// execCommand reads an exec's command in container id, which must be
// running: an echo, or the intent of anything else (forever: a program the
// simulation cannot run).
func (r *Runtime) execCommand(id string, cmd []string) (in intent, echo bool, err error) {
	if len(cmd) == 0 {
		return intent{}, false, fmt.Errorf("exec in %s: empty command", id)
	}
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	_, err = r.running(id, now)
	r.mu.Unlock()
	if err != nil {
		return intent{}, false, fmt.Errorf("exec in %s: %w", id, err)
	}
	if cmd[0] == "echo" {
		return intent{}, true, nil
	}
	return parseIntent(cmd), false, nil
}

// notRun says why a command was not run.
func notRun(cmd []string) string {
	return fmt.Sprintf("%q was not run: this container is simulated and runs no programs (exit N, sleep N and echo are understood)", cmd)
}
