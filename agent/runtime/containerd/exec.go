package containerd

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/ids"
)

// maxExecOutput bounds what Exec keeps of each of stdout and stderr; the rest
// is read and dropped so that the command never blocks on a full pipe.
const maxExecOutput = 1 << 20

// ErrCommandNotFound is returned by Exec, StartExec (and Run) when the
// command does not exist in the container: runc fails before any process
// runs, so there is no exit code (127) to report.
var ErrCommandNotFound = runtime.ErrCommandNotFound

// Exec runs cmd in the running container with its environment, user and
// working directory, and returns its exit code and output. Past timeout the
// command is killed and Exec fails with context.DeadlineExceeded; a timeout
// ≤ 0 leaves only ctx to bound it.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (runtime.ExecResult, error) {
	stdout := &boundedBuffer{max: maxExecOutput}
	stderr := &boundedBuffer{max: maxExecOutput}
	p, err := r.StartExec(ctx, id, runtime.ExecOptions{Command: cmd, Stdout: stdout, Stderr: stderr})
	if err != nil {
		return runtime.ExecResult{}, err
	}
	defer p.Close()
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	code, err := p.Wait(wctx)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return runtime.ExecResult{}, fmt.Errorf("exec %q in %s: timed out after %s: %w", cmd[0], id, timeout, context.DeadlineExceeded)
		}
		return runtime.ExecResult{}, err
	}
	return runtime.ExecResult{ExitCode: code, Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}, nil
}

// StartExec starts a process in the running container with the container's
// own process settings (user, groups, capabilities, no_new_privs, AppArmor)
// — runc joins the container's namespaces, cgroup and seccomp filter — plus
// opts.Env, and returns once it runs.
func (r *Runtime) StartExec(ctx context.Context, id string, opts runtime.ExecOptions) (runtime.Process, error) {
	if len(opts.Command) == 0 {
		return nil, fmt.Errorf("exec in %s: empty command", id)
	}
	cmd := opts.Command
	ctx = r.ns(ctx)
	t, err := r.runningTask(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	spec, err := t.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: container spec: %w", id, err)
	}
	ps := *spec.Process
	ps.Args = cmd
	ps.Terminal = opts.TTY
	ps.Env = append(slices.Clone(ps.Env), opts.Env...)
	kind := ids.Exec
	streams := []cio.Opt{cio.WithStreams(opts.Stdin, opts.Stdout, opts.Stderr), cio.WithFIFODir(r.cfg.FIFODir)}
	if opts.TTY {
		kind = ids.Terminal
		ps.ConsoleSize = &specs.Box{Width: uint(max(opts.Cols, 1)), Height: uint(max(opts.Rows, 1))}
		streams = append(streams, cio.WithTerminal)
	}
	execID, err := ids.New(rand.Reader, kind)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	p, err := t.Exec(ctx, execID, &ps, cio.NewCreator(streams...))
	if err != nil {
		return nil, fmt.Errorf("exec %q in %s: %w", cmd[0], id, err)
	}
	// The wait lives as long as the process, not as the caller's ctx.
	life, end := context.WithCancel(context.WithoutCancel(ctx))
	ep := &execProcess{r: r, container: id, task: t, p: p, tty: opts.TTY, end: end, done: make(chan struct{})}
	exited, err := p.Wait(life)
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("exec %q in %s: wait: %w", cmd[0], id, err)
	}
	if err := p.Start(ctx); err != nil {
		ep.Close()
		if notFound(err) {
			return nil, fmt.Errorf("exec %q in %s: %w (%v)", cmd[0], id, ErrCommandNotFound, err)
		}
		return nil, fmt.Errorf("exec %q in %s: start: %w", cmd[0], id, err)
	}
	ep.pid = p.Pid()
	if opts.TTY {
		// Kept until Close: an agent that dies before it lets the next
		// one end what this terminal left (sweepTerminals).
		if err := r.recordTerminal(terminalRecord{Container: id, Exec: execID, Pid: ep.pid}); err != nil {
			ep.Close()
			return nil, fmt.Errorf("exec in %s: %w", id, err)
		}
		ep.recorded = execID
	}
	go ep.watch(exited)
	return ep, nil
}

// terminalPrefix starts the exec id of every terminal.
const terminalPrefix = string(ids.Terminal)

// execProcess is one process StartExec started.
type execProcess struct {
	r         *Runtime
	container string
	task      ctrd.Task
	p         ctrd.Process
	tty       bool
	pid       uint32
	recorded  string // the exec id of its terminal record; "" for none
	end       context.CancelFunc

	done    chan struct{} // closed once exited and its output is out
	code    int
	waitErr error

	closeOnce sync.Once
	closeErr  error
}

// watch waits for the exit, then for the output copy: the shim closes the
// FIFOs once the process is gone, so the output is complete after it.
func (e *execProcess) watch(exited <-chan ctrd.ExitStatus) {
	defer close(e.done)
	st, ok := <-exited
	if !ok {
		e.waitErr = fmt.Errorf("exec in %s: the wait for its exit ended", e.container)
		return
	}
	code, _, err := st.Result()
	if err != nil {
		e.waitErr = fmt.Errorf("exec in %s: exit status: %w", e.container, err)
		return
	}
	if pio := e.p.IO(); pio != nil {
		pio.Wait()
	}
	e.code = int(code)
}

func (e *execProcess) Wait(ctx context.Context) (int, error) {
	select {
	case <-e.done:
		return e.code, e.waitErr
	case <-ctx.Done():
		return 0, fmt.Errorf("exec in %s: %w", e.container, ctx.Err())
	}
}

func (e *execProcess) Resize(ctx context.Context, cols, rows uint16) error {
	if !e.tty {
		return fmt.Errorf("exec in %s: resize of a process without a terminal", e.container)
	}
	if err := e.p.Resize(e.r.ns(ctx), uint32(max(cols, 1)), uint32(max(rows, 1))); err != nil && !gone(err) {
		return fmt.Errorf("resize terminal in %s: %w", e.container, err)
	}
	return nil
}

func (e *execProcess) Close() error {
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(e.r.ns(context.Background()), cleanupTimeout)
		defer cancel()
		if e.tty && e.pid != 0 {
			killSession(ctx, e.task, e.pid)
		}
		// Deleting the exec kills it if it still runs, waits for its
		// output to be copied and closes the FIFOs.
		if _, err := e.p.Delete(ctx, ctrd.WithProcessKill); err != nil && !gone(err) {
			e.closeErr = fmt.Errorf("end exec in %s: %w", e.container, err)
		}
		e.end()
		if e.recorded != "" {
			if err := e.r.forgetTerminal(e.recorded); err != nil && e.closeErr == nil {
				e.closeErr = err
			}
		}
	})
	return e.closeErr
}

// killSession sends SIGKILL to every process of the task whose session is
// leader's: a terminal's shell and all it started, in the foreground or in
// the background, unless something left the session on purpose (setsid).
// The session id in /proc is in the agent's (the host's) pid namespace, as
// the task's pids are.
func killSession(ctx context.Context, t ctrd.Task, leader uint32) {
	// Twice: a process may fork while the first round kills its parent.
	for range 2 {
		ps, err := t.Pids(ctx)
		if err != nil {
			return
		}
		for _, p := range ps {
			if p.Pid == leader || sessionOf(p.Pid) == leader {
				_ = syscall.Kill(int(p.Pid), syscall.SIGKILL)
			}
		}
	}
}

// notFound recognizes runc's refusal to exec a missing binary, which reaches
// us only as text: `exec: "nope": executable file not found in $PATH` or
// `exec: "/nope": stat /nope: no such file or directory`. Other "no such
// file" failures (a missing bind mount source) do not follow `exec: "`.
func notFound(err error) bool {
	s := err.Error()
	i := strings.Index(s, `exec: "`)
	if i < 0 {
		return false
	}
	s = s[i:]
	return strings.Contains(s, "executable file not found") || strings.Contains(s, "no such file or directory")
}

// boundedBuffer keeps the first max bytes written and accepts (drops) the
// rest. One copy goroutine writes it; it is read after that one is done.
type boundedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *boundedBuffer) Bytes() []byte { return b.buf.Bytes() }
