package containerd

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/ids"
)

// maxExecOutput bounds what Exec keeps of each of stdout and stderr; the rest
// is read and dropped so that the command never blocks on a full pipe.
const maxExecOutput = 1 << 20

// ErrCommandNotFound is returned by Exec (and Run) when the command does not
// exist in the container: runc fails before any process runs, so there is no
// exit code (127) to report.
var ErrCommandNotFound = errors.New("command not found in container")

// Exec runs cmd in the running container with its environment, user and
// working directory, and returns its exit code and output. Past timeout the
// command is killed and Exec fails with context.DeadlineExceeded; a timeout
// ≤ 0 leaves only ctx to bound it.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (runtime.ExecResult, error) {
	if len(cmd) == 0 {
		return runtime.ExecResult{}, fmt.Errorf("exec in %s: empty command", id)
	}
	ctx = r.ns(ctx)
	t, err := r.runningTask(ctx, id)
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec in %s: %w", id, err)
	}
	spec, err := t.Spec(ctx)
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec in %s: container spec: %w", id, err)
	}
	ps := *spec.Process
	ps.Args = cmd
	ps.Terminal = false

	execID, err := ids.New(rand.Reader, ids.Exec)
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec in %s: %w", id, err)
	}
	stdout := &boundedBuffer{max: maxExecOutput}
	stderr := &boundedBuffer{max: maxExecOutput}
	creator := cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(r.cfg.FIFODir))
	p, err := t.Exec(ctx, execID, &ps, creator)
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec %q in %s: %w", cmd[0], id, err)
	}
	// Deleting the exec also waits for its output to be copied and closes
	// the FIFOs; it must run even when ctx has ended.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		p.Delete(dctx, ctrd.WithProcessKill)
	}()

	exited, err := p.Wait(ctx)
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec %q in %s: wait: %w", cmd[0], id, err)
	}
	if err := p.Start(ctx); err != nil {
		if notFound(err) {
			return runtime.ExecResult{}, fmt.Errorf("exec %q in %s: %w (%v)", cmd[0], id, ErrCommandNotFound, err)
		}
		return runtime.ExecResult{}, fmt.Errorf("exec %q in %s: start: %w", cmd[0], id, err)
	}

	// timeout ≤ 0: bounded by ctx alone (a nil channel never fires).
	var expired <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	var st ctrd.ExitStatus
	select {
	case st = <-exited:
	case <-expired:
		_ = p.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		return runtime.ExecResult{}, fmt.Errorf("exec %q in %s: timed out after %s: %w", cmd[0], id, timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		_ = p.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		return runtime.ExecResult{}, fmt.Errorf("exec %q in %s: %w", cmd[0], id, ctx.Err())
	}
	code, _, err := st.Result()
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec %q in %s: exit status: %w", cmd[0], id, err)
	}
	// The output copy ends when the shim closes the FIFOs after the exit;
	// waiting for it here makes the buffers complete.
	if pio := p.IO(); pio != nil {
		pio.Wait()
	}
	return runtime.ExecResult{ExitCode: int(code), Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}, nil
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
