package httpapi_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
)

// A session that writes past its folder's limit through a read-write
// mount cannot be stopped by the files API; the leader's measurement marks
// the folder over quota, and the session's owner sees it in the session's
// status_info (a session mounting it read-only is not told), until the
// folder is back under its limit.
func TestASessionWritingPastTheQuotaIsToldInStatusInfo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`,
		func(cfg *server.Config) {
			cfg.FolderHosts = map[string]string{"local": dir}
			cfg.FolderUsageEvery = 50 * time.Millisecond
		})
	fe := &folderEnv{t: t, s: e.s, admin: e.admin, host: dir}
	e.capacity.FolderHosts = []string{"local"}
	e.beat()
	tok, _ := fe.user("ann")
	f := fe.createFolder(tok, map[string]any{"name": "work", "host": "local"})
	rw := e.mustCreate(tok, oneCPU(map[string]any{"mounts": []string{"work"}}))
	withFolderLimit(t, fe, 1000)
	// What a session writes lands in the directory, past the files API.
	big := filepath.Join(dir, f.ID, "out.bin")
	if err := os.WriteFile(big, make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "folder work, mounted read-write at /home/work/work, holds 5000 bytes, over its 1000-byte max_vfolder_size"
	testcluster.Eventually(t, 10*time.Second, func() error {
		if info := e.get(tok, rw.ID).StatusInfo; !strings.Contains(info, want) {
			return fmt.Errorf("status_info %q", info)
		}
		return nil
	})
	ro := e.mustCreate(tok, oneCPU(map[string]any{"mounts": []string{"work"}}))
	if !ro.Mounts[0].ReadOnly || strings.Contains(ro.StatusInfo, "max_vfolder_size") {
		t.Errorf("a session made while the folder is over quota: mounts %+v, status_info %q", ro.Mounts, ro.StatusInfo)
	}
	if r := fe.put(tok, f.ID, "more.bin", "x"); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("upload into an over-quota folder: %d", r.Status)
	}
	if err := os.Remove(big); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if info := e.get(tok, rw.ID).StatusInfo; strings.Contains(info, "max_vfolder_size") {
			return fmt.Errorf("status_info still %q", info)
		}
		return nil
	})
}
