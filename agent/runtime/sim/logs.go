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

// Logs implements runtime.Runtime. The reader follows the container: a
// read past the end gets the exit line once the container has ended.
// since drops the lines written before it (each line starts with its time).
func (r *Runtime) Logs(_ context.Context, id string, since time.Time) (io.ReadCloser, error) {
	if _, ok := r.logText(id); !ok {
		return nil, fmt.Errorf("logs: %w", runtime.ErrNotFound)
	}
	return &logReader{r: r, id: id, since: since}, nil
}

// logText is what container id wrote by now, running or removed within
// the retention.
func (r *Runtime) logText(id string) ([]byte, bool) {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok {
		return c.text(now), true
	}
	if e, ok := r.ended[id]; ok && now.Sub(e.removed) <= r.cfg.EndedLogRetention {
		return e.text, true
	}
	return nil, false
}

// logReader reads a container's log from where it stopped, so reading on
// after io.EOF gets what was added since (as reading a growing file does).
type logReader struct {
	r     *Runtime
	id    string
	since time.Time
	off   int
}

func (l *logReader) Read(p []byte) (int, error) {
	text, _ := l.r.logText(l.id)
	text = linesSince(text, l.since)
	if l.off >= len(text) {
		return 0, io.EOF
	}
	n := copy(p, text[l.off:])
	l.off += n
	return n, nil
}

func (l *logReader) Close() error { return nil }

// linesSince keeps the lines stamped at or after since (all for zero).
// Lines are only ever appended, so the result only grows as text does.
func linesSince(text []byte, since time.Time) []byte {
	if since.IsZero() {
		return text
	}
	for len(text) > 0 {
		line, _, _ := bytes.Cut(text, []byte("\n"))
		f := bytes.Fields(line)
		if len(f) < 2 {
			return text
		}
		at, err := time.Parse(time.RFC3339Nano, string(f[1]))
		if err != nil || !at.Before(since) {
			return text
		}
		text = text[min(len(line)+1, len(text)):]
	}
	return text
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
