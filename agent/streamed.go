package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// Answers that stream: logs (followed or not) and an exec whose output
// comes as it is written. Every write must be taken by the manager within
// StreamStall, else the answer is cut: a reader that stops holds the
// producer back, it never makes the agent pile output up.

const (
	// logFollowPoll is how often a followed log looks for more output at
	// its end; logRunningEvery how often it asks whether the container
	// still runs while nothing comes.
	logFollowPoll   = 250 * time.Millisecond
	logRunningEvery = time.Second
	// maxTail bounds ?tail=.
	maxTail = 1_000_000
)

// logs is GET /v1/containers/{id}/logs?follow=true&since=RFC3339&tail=N.
func (a *Agent) logs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			problem(w, http.StatusBadRequest, fmt.Sprintf("since %q must be an RFC 3339 time, e.g. 2025-01-02T15:04:05Z", s))
			return
		}
		since = t
	}
	tail := -1
	if s := q.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxTail {
			problem(w, http.StatusBadRequest, fmt.Sprintf("tail %q must be a number of lines from 0 to %d", s, maxTail))
			return
		}
		tail = n
	}
	follow := q.Get("follow") == "true"
	rc, err := a.cfg.Runtime.Logs(r.Context(), id, since)
	if err != nil {
		runtimeProblem(w, err)
		return
	}
	defer rc.Close()
	var src io.Reader = rc
	if tail >= 0 {
		if src, err = lastLines(rc, tail); err != nil {
			problem(w, http.StatusBadGateway, "reading the log: "+err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	rcw := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	var lastCheck time.Time
	ended := false
	for {
		n, err := src.Read(buf)
		if n > 0 {
			_ = rcw.SetWriteDeadline(a.stallDeadline())
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rcw.Flush()
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			a.log.Warn("read logs", "container", id, "err", err)
			return
		}
		if tr, ok := src.(*tailReader); ok && !tr.rest {
			// The tail is out; what follows is read from the log itself.
			src, tr.rest = rc, true
			continue
		}
		if !follow || ended {
			return
		}
		// At the end: more may come while the container runs. Once it
		// has stopped, one more pass reads what it wrote last.
		if time.Since(lastCheck) >= logRunningEvery {
			lastCheck = time.Now()
			if !a.running(r.Context(), id) {
				ended = true
				continue
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(logFollowPoll):
		}
	}
}

// running tells whether the container's task still runs.
func (a *Agent) running(ctx context.Context, id string) bool {
	_, err := a.cfg.Runtime.Pids(ctx, id)
	return err == nil
}

// tailReader is the last lines of a log, read before the rest of it.
type tailReader struct {
	io.Reader
	rest bool // switched to the log itself
}

// lastLines is a reader of the last n lines of rc from where it stands; rc
// is then read on from its end. A seekable log is searched from its end;
// another is read through, keeping the last n lines.
func lastLines(rc io.Reader, n int) (io.Reader, error) {
	if f, ok := rc.(io.ReadSeeker); ok {
		start, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		from, err := tailStart(f, start, n)
		if err != nil {
			return nil, err
		}
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			return nil, err
		}
		return f, nil
	}
	var lines [][]byte
	var cur []byte
	buf := make([]byte, 32<<10)
	for {
		m, err := rc.Read(buf)
		for _, b := range buf[:m] {
			cur = append(cur, b)
			if b == '\n' {
				lines = append(lines, cur)
				cur = nil
				if len(lines) > n {
					lines = lines[1:]
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if cur != nil {
		lines = append(lines, cur)
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	readers := make([]io.Reader, len(lines))
	for i, l := range lines {
		readers[i] = bytes.NewReader(l)
	}
	return &tailReader{Reader: io.MultiReader(readers...)}, nil
}

// tailStart is the offset of the last n lines between start and the end of
// f (a last line without its newline counts).
func tailStart(f io.ReadSeeker, start int64, n int) (int64, error) {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return end, nil
	}
	buf := make([]byte, 64<<10)
	count := 0
	for pos := end; pos > start; {
		size := min(int64(len(buf)), pos-start)
		pos -= size
		if _, err := f.Seek(pos, io.SeekStart); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(f, buf[:size]); err != nil {
			return 0, err
		}
		for i := size - 1; i >= 0; i-- {
			if buf[i] != '\n' || pos+i == end-1 { // the final newline ends the last line
				continue
			}
			if count++; count == n {
				return pos + i + 1, nil
			}
		}
	}
	return start, nil
}

// execStream answers an exec with stream true: api.ExecEvent lines as the
// output comes, then the exit code (or why there is none).
func (a *Agent) execStream(w http.ResponseWriter, r *http.Request, cmd []string, timeout time.Duration) {
	ev := &eventWriter{w: w, rc: http.NewResponseController(w), stall: a.cfg.StreamStall, ready: make(chan struct{})}
	p, err := a.cfg.Runtime.StartExec(r.Context(), r.PathValue("id"), runtime.ExecOptions{Command: cmd,
		Stdout: ev.stream("stdout"), Stderr: ev.stream("stderr")})
	if err != nil {
		close(ev.ready) // unstarted: nothing to write
		runtimeProblem(w, err)
		return
	}
	defer p.Close()
	w.Header().Set("Content-Type", api.ExecStreamContentType)
	w.WriteHeader(http.StatusOK)
	ev.started = true
	close(ev.ready)
	ev.flush()
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	code, err := p.Wait(ctx)
	switch {
	case r.Context().Err() != nil:
		return // the manager went away: Close ends the command
	case err != nil:
		_ = ev.event(api.ExecEvent{Error: fmt.Sprintf("the command did not end within %s and was killed", timeout)})
	default:
		_ = ev.event(api.ExecEvent{ExitCode: &code})
	}
}

// eventWriter writes one JSON line per event, flushed, from the runtime's
// output copies (one per stream, so it locks).
type eventWriter struct {
	mu    sync.Mutex
	w     http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
	// ready is closed once the answer's status is written (started) or
	// will never be: output that comes before waits for it.
	ready   chan struct{}
	started bool
}

func (e *eventWriter) event(ev api.ExecEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	<-e.ready
	if !e.started {
		return errors.New("the exec did not start")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.rc.SetWriteDeadline(time.Now().Add(e.stall))
	if _, err := e.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (e *eventWriter) flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.rc.Flush()
}

func (e *eventWriter) stream(name string) io.Writer {
	return writerFunc(func(b []byte) (int, error) {
		if err := e.event(api.ExecEvent{Stream: name, Data: b}); err != nil {
			return 0, err
		}
		return len(b), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
