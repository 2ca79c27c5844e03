package containerd

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A removed container's output moves under ended/ stamped with the removal
// time; ended logs older than the retention go at the next removal; a
// negative retention keeps nothing.
func TestEndedLogsAreKeptForTheRetentionOnly(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	write := func(path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("output\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(path string) bool { _, err := os.Stat(path); return err == nil }

	r := &Runtime{cfg: Config{LogDir: t.TempDir(), EndedLogRetention: time.Hour, Now: func() time.Time { return now }}}
	write(r.logPath("s-new-0"))
	write(r.endedLogPath("s-old-0"))
	old := now.Add(-2 * time.Hour)
	if err := os.Chtimes(r.endedLogPath("s-old-0"), old, old); err != nil {
		t.Fatal(err)
	}
	write(r.endedLogPath("s-recent-0"))
	recent := now.Add(-30 * time.Minute)
	if err := os.Chtimes(r.endedLogPath("s-recent-0"), recent, recent); err != nil {
		t.Fatal(err)
	}
	if err := r.keepEndedLog("s-new-0"); err != nil {
		t.Fatal(err)
	}
	if exists(r.logPath("s-new-0")) || !exists(r.endedLogPath("s-new-0")) {
		t.Error("the removed container's log was not moved under ended/")
	}
	if exists(r.endedLogPath("s-old-0")) {
		t.Error("an ended log past the retention was kept")
	}
	if !exists(r.endedLogPath("s-recent-0")) {
		t.Error("an ended log within the retention was pruned")
	}

	none := &Runtime{cfg: Config{LogDir: t.TempDir(), EndedLogRetention: -1, Now: func() time.Time { return now }}}
	write(none.logPath("s-x-0"))
	if err := none.keepEndedLog("s-x-0"); err != nil {
		t.Fatal(err)
	}
	if exists(none.logPath("s-x-0")) || exists(none.endedLogPath("s-x-0")) {
		t.Error("with a negative retention the log was kept")
	}
}
