package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
)

// A terminal's processes belong to the shim, not to the agent: if the agent
// dies, its end of the terminal's FIFOs closes, the shim hangs the terminal
// up and the shell gets SIGHUP — but whatever ignores SIGHUP (nohup, a
// trap) would run on with nobody to end it. So each open terminal is
// written down here (one small file per terminal under LogDir/terminals,
// which persists across agent restarts as the logs do), and a new Runtime
// ends every terminal an earlier one left before anything else.

// terminalRecord is what ending a terminal needs: its container, its exec
// id in the shim and its leader's host pid (the session's id).
type terminalRecord struct {
	Container string `json:"container"`
	Exec      string `json:"exec"`
	Pid       uint32 `json:"pid"`
}

func (r *Runtime) terminalDir() string { return filepath.Join(r.cfg.LogDir, "terminals") }

func (r *Runtime) recordTerminal(rec terminalRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("record terminal: %w", err)
	}
	if err := os.MkdirAll(r.terminalDir(), 0o700); err != nil {
		return fmt.Errorf("record terminal: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.terminalDir(), rec.Exec), b, 0o600); err != nil {
		return fmt.Errorf("record terminal: %w", err)
	}
	return nil
}

func (r *Runtime) forgetTerminal(execID string) error {
	if err := os.Remove(filepath.Join(r.terminalDir(), execID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forget terminal %s: %w", execID, err)
	}
	return nil
}

// sweepTerminals ends every terminal an earlier Runtime on this LogDir
// recorded and did not close: the processes of its session are killed and
// its exec deleted from the shim. It returns how many it ended.
func (r *Runtime) sweepTerminals(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(r.terminalDir())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("terminals left by an earlier agent: %w", err)
	}
	ctx = r.ns(ctx)
	var errs []error
	ended := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), terminalPrefix) {
			continue
		}
		path := filepath.Join(r.terminalDir(), e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var rec terminalRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.Exec != e.Name() {
			r.cfg.Logger.Warn("unreadable terminal record; removed", "file", path, "err", err)
			_ = os.Remove(path)
			continue
		}
		if err := r.endTerminal(ctx, rec); err != nil {
			errs = append(errs, err)
			continue
		}
		_ = os.Remove(path)
		ended++
	}
	return ended, errors.Join(errs...)
}

// endTerminal kills what a recorded terminal left and deletes its exec. A
// container or task that is gone took them with it.
func (r *Runtime) endTerminal(ctx context.Context, rec terminalRecord) error {
	c, err := r.client.LoadContainer(ctx, rec.Container)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("end terminal %s: %w", rec.Exec, err)
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("end terminal %s: %w", rec.Exec, err)
	}
	killSession(ctx, t, rec.Pid)
	p, err := t.LoadProcess(ctx, rec.Exec, nil)
	if err != nil {
		if gone(err) {
			return nil
		}
		return fmt.Errorf("end terminal %s: %w", rec.Exec, err)
	}
	if _, err := p.Delete(ctx, ctrd.WithProcessKill); err != nil && !gone(err) {
		return fmt.Errorf("end terminal %s: %w", rec.Exec, err)
	}
	r.cfg.Logger.Info("ended a terminal an earlier agent left open", "container", rec.Container, "exec", rec.Exec)
	return nil
}

// sessionOf is the session id of a host process (0 when it cannot be read:
// it has exited).
func sessionOf(pid uint32) uint32 {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/stat")
	if err != nil {
		return 0
	}
	return statSession(b)
}

// statSession reads the session field of /proc/PID/stat: "pid (comm) state
// ppid pgrp session ...", where comm may hold spaces and parentheses, so
// the fields are counted after its last ')'.
func statSession(stat []byte) uint32 {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 4 {
		return 0
	}
	n, err := strconv.ParseUint(f[3], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}
