package sim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
)

// endedLog is the output of a removed container, kept a while so that the
// logs of a finished session can still be read (as the containerd runtime
// keeps its log files).
type endedLog struct {
	text    []byte
	removed time.Time
}

// text is what the container wrote by now: its start line and, once it
// has ended, the exit line.
func (c *container) text(now time.Time) []byte {
	out := bytes.Clone(c.log)
	if at, code, ok := c.exit(now); ok {
		how := "exited"
		if !c.stopped.IsZero() && at.Equal(c.stopped) {
			how = "stopped (SIGTERM)"
		}
		out = fmt.Appendf(out, "[berth-sim] %s %s with code %d\n", at.UTC().Format(time.RFC3339Nano), how, code)
	}
	return out
}

// Logs implements runtime.Runtime.
func (r *Runtime) Logs(_ context.Context, id string) (io.ReadCloser, error) {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok {
		return io.NopCloser(bytes.NewReader(c.text(now))), nil
	}
	if e, ok := r.ended[id]; ok && now.Sub(e.removed) <= r.cfg.EndedLogRetention {
		return io.NopCloser(bytes.NewReader(e.text)), nil
	}
	return nil, fmt.Errorf("logs: %w", runtime.ErrNotFound)
}

// keepEndedLog keeps a removed container's output and forgets those past
// the retention (every removal ages them: no timer of its own), or the
// oldest beyond maxEndedLogs. Called with r.mu held.
func (r *Runtime) keepEndedLog(id string, c *container, now time.Time) {
	if r.cfg.EndedLogRetention < 0 {
		return
	}
	r.ended[id] = endedLog{text: c.text(now), removed: now}
	oldest, at := "", now
	for k, e := range r.ended {
		if now.Sub(e.removed) > r.cfg.EndedLogRetention {
			delete(r.ended, k)
			continue
		}
		if e.removed.Before(at) || oldest == "" {
			oldest, at = k, e.removed
		}
	}
	if len(r.ended) > maxEndedLogs {
		delete(r.ended, oldest)
	}
}
