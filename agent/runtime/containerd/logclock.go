package containerd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The shim writes a container's output to its log file as raw bytes, with
// no time on them, and from outside the agent (so that the output survives
// agent restarts). To answer "the output since T", the runtime notes each
// log's length once a second while it grows: a file of 16-byte records
// (Unix nanoseconds, length) beside the log, <id>.times, moved and pruned
// with it. The output since T is then what follows the length noted at the
// last note before T: from at most one interval before T on (more when
// the agent was down across T and took no notes).

// logClockEvery is how often the lengths are noted.
const logClockEvery = time.Second

const timeRecord = 16

func timesPath(logPath string) string { return strings.TrimSuffix(logPath, ".log") + ".times" }

// clockLogs notes the logs' lengths until ctx ends.
func (r *Runtime) clockLogs(ctx context.Context) {
	defer r.wg.Done()
	noted := map[string]int64{} // log file → the length last noted
	t := time.NewTicker(logClockEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.noteLogLengths(noted, r.cfg.Now()); err != nil {
			r.cfg.Logger.Warn("note the length of container logs", "err", err)
		}
	}
}

func (r *Runtime) noteLogLengths(noted map[string]int64, now time.Time) error {
	entries, err := os.ReadDir(r.cfg.LogDir)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		path := filepath.Join(r.cfg.LogDir, e.Name())
		seen[path] = true
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		last, ok := noted[path]
		if !ok {
			// First look since start: what an earlier agent noted.
			_, last, _ = lastNote(timesPath(path))
		}
		if info.Size() <= last {
			noted[path] = last
			continue
		}
		if err := appendNote(timesPath(path), now, info.Size()); err != nil {
			errs = append(errs, err)
			continue
		}
		noted[path] = info.Size()
	}
	for path := range noted {
		if !seen[path] {
			delete(noted, path)
		}
	}
	return errors.Join(errs...)
}

func appendNote(path string, at time.Time, length int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	var b [timeRecord]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(b[8:], uint64(length))
	_, werr := f.Write(b[:])
	return errors.Join(werr, f.Close())
}

// lastNote reads the last record of a times file.
func lastNote(path string) (time.Time, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return time.Time{}, 0, err
	}
	n := info.Size() / timeRecord
	if n == 0 {
		return time.Time{}, 0, nil
	}
	return readNote(f, n-1)
}

func readNote(f io.ReaderAt, i int64) (time.Time, int64, error) {
	var b [timeRecord]byte
	if _, err := f.ReadAt(b[:], i*timeRecord); err != nil {
		return time.Time{}, 0, err
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), int64(binary.BigEndian.Uint64(b[8:])), nil
}

// offsetSince is where the output written since t starts in the log whose
// notes are in timesFile: the length noted last before t (0 when none was).
func offsetSince(timesFile string, t time.Time) (int64, error) {
	f, err := os.Open(timesFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n := int(info.Size() / timeRecord)
	var readErr error
	// The first note at or after t; the one before it is the answer.
	i := sort.Search(n, func(i int) bool {
		at, _, err := readNote(f, int64(i))
		if err != nil {
			readErr = err
			return true
		}
		return !at.Before(t)
	})
	if readErr != nil {
		return 0, fmt.Errorf("read %s: %w", timesFile, readErr)
	}
	if i == 0 {
		return 0, nil
	}
	_, length, err := readNote(f, int64(i-1))
	return length, err
}
