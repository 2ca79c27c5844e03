package fsquota

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// xfs mounts a fresh XFS image on a loop device for t (mount options as
// given) and returns the mount point, or the mount's error when mounting
// with those options fails. Root and mkfs.xfs (xfsprogs) are needed: the
// test skips without them, and fails instead when CI is "true".
func xfs(t *testing.T, options string) (string, error) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (mount, loop devices)")
	}
	mkfs, err := exec.LookPath("mkfs.xfs")
	if err != nil {
		if mkfs, err = exec.LookPath("/usr/sbin/mkfs.xfs"); err != nil {
			missing = append(missing, "mkfs.xfs (apt-get install xfsprogs; scripts/install-deps.sh)")
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and this test needs %s", strings.Join(missing, ", "))
		}
		t.Skipf("needs %s", strings.Join(missing, ", "))
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "xfs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	// mkfs.xfs wants 300 MB at least; the file is sparse.
	f, err := os.Create(img)
	if err == nil {
		err = errors.Join(f.Truncate(320<<20), f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v: %s", err, out)
	}
	args := []string{"-o", "loop", img, mnt}
	if options != "" {
		args = []string{"-o", "loop," + options, img, mnt}
	}
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		return "", errors.New(strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt, nil
}

func projectOf(t *testing.T, path string) (uint32, bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, inherit, err := project(f)
	if err != nil {
		t.Fatal(err)
	}
	return id, inherit
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLabelPutsEveryFileOfTheFolderIntoItsProjectOnXFS labels a real
// folder on XFS (which keeps project ids whether or not quotas are on):
// the directory tree and files get the folder's project, directories
// PROJINHERIT so what is written later follows and nothing of another
// project is renamed in; a file a session moved to
// another project is moved back; a symlink out of the folder is not
// followed; and an id already carried by another folder's directory is
// skipped for the folder's next one. Without a quota-enabled mount the
// limit itself cannot be set, and says what is missing.
func TestLabelPutsEveryFileOfTheFolderIntoItsProjectOnXFS(t *testing.T) {
	mnt, err := xfs(t, "")
	if err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(mnt, "folders")
	write(t, filepath.Join(host, "f-one", "top.txt"), "top")
	write(t, filepath.Join(host, "f-one", "sub", "deep", "file.bin"), "deep")
	write(t, filepath.Join(host, "f-other", "secret"), "not f-one's")
	if err := os.Symlink("../../f-other/secret", filepath.Join(host, "f-one", "sub", "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(host, "f-one", "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Another folder already carries the id f-one would try first.
	if err := os.Mkdir(filepath.Join(host, "f-taken"), 0o755); err != nil {
		t.Fatal(err)
	}
	taken, err := os.Open(filepath.Join(host, "f-taken"))
	if err != nil {
		t.Fatal(err)
	}
	err = setProject(taken, ProjectID("f-one", 0), true)
	taken.Close()
	if err != nil {
		t.Fatal(err)
	}

	s := System{}
	id, err := s.Label(context.Background(), host, "f-one")
	if err != nil {
		t.Fatal(err)
	}
	if want := ProjectID("f-one", 1); id != want {
		t.Fatalf("project %d, want %d (attempt 1: attempt 0 is f-taken's)", id, want)
	}
	for _, p := range []string{"f-one", "f-one/sub", "f-one/sub/deep"} {
		if got, inherit := projectOf(t, filepath.Join(host, p)); got != id || !inherit {
			t.Errorf("%s: project %d inherit %v, want %d with PROJINHERIT", p, got, inherit, id)
		}
	}
	for _, p := range []string{"f-one/top.txt", "f-one/sub/deep/file.bin"} {
		if got, _ := projectOf(t, filepath.Join(host, p)); got != id {
			t.Errorf("%s: project %d, want %d", p, got, id)
		}
	}
	if got, _ := projectOf(t, filepath.Join(host, "f-other", "secret")); got != 0 {
		t.Errorf("the symlink's target outside the folder was relabelled to %d", got)
	}
	// Written after: inherits.
	write(t, filepath.Join(host, "f-one", "sub", "deep", "later.txt"), "later")
	if got, _ := projectOf(t, filepath.Join(host, "f-one", "sub", "deep", "later.txt")); got != id {
		t.Errorf("a file written after labelling is in project %d, want %d", got, id)
	}

	// Nothing of another project is renamed in (PROJINHERIT): it would
	// bring its blocks past the limit.
	err = os.Rename(filepath.Join(host, "f-other", "secret"), filepath.Join(host, "f-one", "secret"))
	if !errors.Is(err, syscall.EXDEV) {
		t.Errorf("renaming a file of project 0 into the folder: %v, want EXDEV", err)
	}

	// A file's owner may move it to another project (here: to none);
	// labelling again moves it back.
	f, err := os.Open(filepath.Join(host, "f-one", "top.txt"))
	if err != nil {
		t.Fatal(err)
	}
	err = setProject(f, 0, false)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.Label(context.Background(), host, "f-one"); err != nil || again != id {
		t.Fatalf("labelling again: %d, %v; want %d", again, err, id)
	}
	if got, _ := projectOf(t, filepath.Join(host, "f-one", "top.txt")); got != id {
		t.Errorf("a file moved out of the project stays in %d, want %d", got, id)
	}

	if _, err := s.Label(context.Background(), host, "../f-other"); err == nil {
		t.Error("a folder id with a slash was labelled")
	}
	enforced, err := s.Enforced(host)
	if err != nil || enforced {
		t.Errorf("Enforced on XFS mounted without quotas = %v, %v; want false", enforced, err)
	}
	if err := s.SetLimit(host, id, 1<<20); err == nil || !strings.Contains(err.Error(), "prjquota") {
		t.Errorf("a limit on XFS without quotas: %v, want an error naming prjquota", err)
	}
}

// TestALimitStopsWritesOnXFSWithProjectQuotas is the whole path on a
// filesystem that enforces project quotas: a folder limited to 1 MiB takes
// no 2 MiB file (EDQUOT), and takes it once the limit is cleared. It needs
// a kernel with XFS quota support (CONFIG_XFS_QUOTA): one without it
// refuses the mount ("quota support not available in this kernel"), and
// the test skips, CI included, saying so, since no package installs it.
func TestALimitStopsWritesOnXFSWithProjectQuotas(t *testing.T) {
	mnt, err := xfs(t, "prjquota")
	if err != nil {
		t.Skipf("this kernel cannot mount XFS with prjquota (needs CONFIG_XFS_QUOTA): %v", err)
	}
	host := filepath.Join(mnt, "folders")
	write(t, filepath.Join(host, "f-q", "old.txt"), "x")
	s := System{}
	if enforced, err := s.Enforced(host); err != nil || !enforced {
		t.Fatalf("Enforced = %v, %v on XFS mounted with prjquota", enforced, err)
	}
	id, err := s.Label(context.Background(), host, "f-q")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetLimit(host, id, 1<<20); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("b", 2<<20)
	err = os.WriteFile(filepath.Join(host, "f-q", "big"), []byte(big), 0o644)
	if !errors.Is(err, syscall.EDQUOT) {
		t.Fatalf("writing 2 MiB into a folder limited to 1 MiB: %v, want EDQUOT", err)
	}
	if err := s.ClearLimit(host, id); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "f-q", "big"), []byte(big), 0o644); err != nil {
		t.Fatalf("writing 2 MiB after the limit was cleared: %v", err)
	}
}
