package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"

	"github.com/berth-cluster/berth/agent/runtime"
)

// killWait bounds the wait for a task to be reaped after SIGKILL; past it
// something is wrong below us (a stuck shim, D-state processes).
const killWait = 30 * time.Second

// Stop sends SIGTERM, waits up to grace, then SIGKILL. A container that has
// no task or whose task has exited is already stopped: Stop returns nil.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s: load task: %w", id, err)
	}
	st, err := t.Status(ctx)
	if err != nil {
		return fmt.Errorf("stop %s: task status: %w", id, err)
	}
	if st.Status == ctrd.Stopped {
		return nil
	}

	// Wait must be registered before the signal, or the exit can be missed.
	exited, err := t.Wait(ctx)
	if err != nil {
		return fmt.Errorf("stop %s: wait for task: %w", id, err)
	}
	if grace > 0 {
		if err := t.Kill(ctx, syscall.SIGTERM); err != nil {
			if gone(err) {
				return nil
			}
			return fmt.Errorf("stop %s: SIGTERM: %w", id, err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("stop %s: %w", id, ctx.Err())
		case <-timer.C:
		}
	}
	if err := t.Kill(ctx, syscall.SIGKILL); err != nil {
		if gone(err) {
			return nil
		}
		return fmt.Errorf("stop %s: SIGKILL: %w", id, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: waiting after SIGKILL: %w", id, ctx.Err())
	case <-time.After(killWait):
		return fmt.Errorf("stop %s: task still running %s after SIGKILL", id, killWait)
	}
}

// gone: the signal found no process, which for Stop means done.
func gone(err error) bool {
	return errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err)
}

// Remove deletes the task (killing it if it still runs), the container, its
// snapshot and home, and keeps its log file for a while (keepEndedLog).
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if errors.Is(err, runtime.ErrNotFound) {
		// Removed behind the agent's back: its home is still ours to clear.
		return errors.Join(fmt.Errorf("remove: %w", err), r.removeHome(id))
	}
	if err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	t, err := c.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("remove %s: load task: %w", id, err)
	default:
		if _, err := t.Delete(ctx, ctrd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove %s: delete task: %w", id, err)
		}
	}
	if err := c.Delete(ctx, ctrd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove %s: delete container: %w", id, err)
	}
	r.forgetOOM(id)
	// The log first: once the container is gone from List, its output
	// must already be where GET logs of an ended session finds it.
	logErr := r.keepEndedLog(id)
	if err := r.removeHome(id); err != nil {
		return errors.Join(logErr, fmt.Errorf("remove %s: %w", id, err))
	}
	return logErr
}

// keepEndedLog moves a removed container's output under LogDir/ended, so
// the logs of a finished session can still be read, and deletes the ended
// logs past the retention (every removal ages them: no timer of its own).
func (r *Runtime) keepEndedLog(id string) error {
	if r.cfg.EndedLogRetention < 0 {
		for _, f := range []string{r.logPath(id), timesPath(r.logPath(id))} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove %s: log file: %w", id, err)
			}
		}
		return nil
	}
	ended := filepath.Dir(r.endedLogPath(id))
	if err := os.MkdirAll(ended, 0o750); err != nil {
		return fmt.Errorf("remove %s: ended log dir: %w", id, err)
	}
	// The rename keeps the file's time: stamp it with the removal, from
	// which the retention counts. The times file goes with it (logclock.go).
	now := r.cfg.Now()
	for _, f := range [][2]string{{r.logPath(id), r.endedLogPath(id)}, {timesPath(r.logPath(id)), timesPath(r.endedLogPath(id))}} {
		if err := os.Rename(f[0], f[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: keep log file: %w", id, err)
		}
		if err := os.Chtimes(f[1], now, now); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: stamp log file: %w", id, err)
		}
	}
	return r.pruneEndedLogs(ended, now)
}

func (r *Runtime) pruneEndedLogs(dir string, now time.Time) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list ended logs: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if now.Sub(info.ModTime()) > r.cfg.EndedLogRetention {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("prune ended log %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}
