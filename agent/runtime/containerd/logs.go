package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd/identifiers"

	"github.com/berth-cluster/berth/agent/runtime"
)

// Logs opens the container's log file: stdout and stderr interleaved as the
// shim wrote them, from the output written since since on (logclock.go). The
// file outlives the task and the agent; after Remove it is kept for
// Config.EndedLogRetention.
func (r *Runtime) Logs(ctx context.Context, id string, since time.Time) (io.ReadCloser, error) {
	ctx = r.ns(ctx)
	// The id becomes a file name: load validates it and says whether the
	// container exists at all.
	if _, err := r.load(ctx, id); err != nil {
		// A removed container's output is kept a while (Remove): the
		// id was validated by load, so it is a plain file name.
		if errors.Is(err, runtime.ErrNotFound) && identifiers.Validate(id) == nil {
			if f, ferr := os.Open(r.endedLogPath(id)); ferr == nil {
				return seekSince(f, r.endedLogPath(id), since)
			}
		}
		return nil, fmt.Errorf("logs: %w", err)
	}
	f, err := os.Open(r.logPath(id))
	if errors.Is(err, os.ErrNotExist) {
		// Created, never started: no output yet.
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		return nil, fmt.Errorf("logs of %s: %w", id, err)
	}
	return seekSince(f, r.logPath(id), since)
}

// seekSince moves f, the log at path, to the output written since since.
func seekSince(f *os.File, path string, since time.Time) (io.ReadCloser, error) {
	if since.IsZero() {
		return f, nil
	}
	off, err := offsetSince(timesPath(path), since)
	if err == nil {
		_, err = f.Seek(off, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("logs since %s: %w", since.Format(time.RFC3339), err)
	}
	return f, nil
}
