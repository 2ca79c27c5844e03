package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// MPSControl is NVIDIA's MPS control program: `-d` starts the daemon, and
// commands on its stdin talk to a running one.
const MPSControl = "nvidia-cuda-mps-control"

// mpsCommandTimeout bounds one MPS command: a control program that cannot
// reach its daemon must not hold a container start.
const mpsCommandTimeout = 10 * time.Second

// Runner runs a program to completion: the MPS control commands go through
// it, so tests can check the sequence without NVIDIA's programs.
type Runner interface {
	// Run runs name with args, the agent's environment plus env, and stdin;
	// it returns the standard output, or an error with the standard error.
	Run(ctx context.Context, env []string, stdin string, name string, args ...string) (string, error)
}

// ExecRunner runs programs with os/exec.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, env []string, stdin string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// `-d` forks the daemon, which may keep the output pipes open for its
	// life: once the program itself has exited, wait for them no longer.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil && !(errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success()) {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errOut.String()+" "+out.String()))
	}
	return out.String(), nil
}

// mpsDaemon is the control daemon of one GPU: its own pipe and log
// directories under the agent's MPS root, and CUDA_VISIBLE_DEVICES naming
// that GPU alone, so the daemon's device 0 is it.
type mpsDaemon struct {
	uuid    string
	pipeDir string
	logDir  string
	// Defaults set so far: the daemon's defaults are the ceiling a client
	// gets when it sets no limit of its own, kept ≥ the largest slice.
	memMiB  int64
	percent int
}

func newMPSDaemon(root, uuid string) *mpsDaemon {
	dir := filepath.Join(root, uuid)
	return &mpsDaemon{uuid: uuid, pipeDir: filepath.Join(dir, "pipe"), logDir: filepath.Join(dir, "log")}
}

func (d *mpsDaemon) env() []string {
	return []string{"CUDA_VISIBLE_DEVICES=" + d.uuid, "CUDA_MPS_PIPE_DIRECTORY=" + d.pipeDir, "CUDA_MPS_LOG_DIRECTORY=" + d.logDir}
}

func (d *mpsDaemon) control(ctx context.Context, r Runner, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, mpsCommandTimeout)
	defer cancel()
	out, err := r.Run(ctx, d.env(), command+"\n", MPSControl)
	if err != nil {
		return out, fmt.Errorf("MPS of GPU %s: %s: %w", d.uuid, command, err)
	}
	return out, nil
}

// running asks the daemon for its servers: only a live daemon answers.
func (d *mpsDaemon) running(ctx context.Context, r Runner) bool {
	_, err := d.control(ctx, r, "get_server_list")
	return err == nil
}

// ensure starts the daemon unless it answers, and raises its defaults to
// at least memMiB and percent. A daemon found dead is started again with
// the defaults it had.
func (d *mpsDaemon) ensure(ctx context.Context, r Runner, memMiB int64, percent int) error {
	if !d.running(ctx, r) {
		for _, dir := range []string{d.pipeDir, d.logDir} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("MPS of GPU %s: %w", d.uuid, err)
			}
		}
		sctx, cancel := context.WithTimeout(ctx, mpsCommandTimeout)
		_, err := r.Run(sctx, d.env(), "", MPSControl, "-d")
		cancel()
		if err != nil {
			return fmt.Errorf("start the MPS daemon of GPU %s: %w", d.uuid, err)
		}
		// A new daemon knows no defaults: set them all again.
		memMiB, percent = max(memMiB, d.memMiB), max(percent, d.percent)
		d.memMiB, d.percent = 0, 0
	}
	if memMiB > d.memMiB {
		if _, err := d.control(ctx, r, fmt.Sprintf("set_default_device_pinned_mem_limit 0 %dM", memMiB)); err != nil {
			return err
		}
		d.memMiB = memMiB
	}
	if percent > d.percent {
		if _, err := d.control(ctx, r, fmt.Sprintf("set_default_active_thread_percentage %d", percent)); err != nil {
			return err
		}
		d.percent = percent
	}
	return nil
}

func (d *mpsDaemon) quit(ctx context.Context, r Runner) error {
	_, err := d.control(ctx, r, "quit")
	return err
}
