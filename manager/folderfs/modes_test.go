package folderfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Folders belong to the containers' user and group and to no one else:
// directories 0770, files 0660, whatever the umask, intermediate
// directories of an upload included.
func TestFoldersBelongToTheOwnerAlone(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (chown); CI must run it")
		}
		t.Skip("needs root (chown)")
	}
	host := t.TempDir()
	s := New(map[string]string{"h": host}, 0, 0, nil, WithOwner(1000, 1001))
	if err := s.Create("h", "f1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write("h", "f1", "a/b/data.bin", strings.NewReader("payload"), -1, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{"f1", DirMode}, {"f1/a", DirMode}, {"f1/a/b", DirMode}, {"f1/a/b/data.bin", FileMode},
	} {
		st, err := os.Lstat(filepath.Join(host, c.path))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode().Perm() != c.mode || st.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 || sys.Uid != 1000 || sys.Gid != 1001 {
			t.Errorf("%s: %v %d:%d, want %v 1000:1001", c.path, st.Mode(), sys.Uid, sys.Gid, c.mode)
		}
	}

	// Another account of the host cannot even read what was uploaded; the
	// owner can. The folder's mode is the only thing in the way: its
	// parents are opened up for the test.
	for p := host; p != filepath.Dir(p) && strings.HasPrefix(p, os.TempDir()) && p != filepath.Clean(os.TempDir()); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(host, "f1/a/b/data.bin")
	readAs := func(uid, gid uint32) error {
		cmd := exec.Command("cat", file)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		out, err := cmd.CombinedOutput()
		if err == nil && string(out) != "payload" {
			t.Errorf("cat as %d read %q", uid, out)
		}
		return err
	}
	if err := readAs(65534, 65534); err == nil {
		t.Error("uid 65534 read a file in a folder")
	}
	if err := readAs(1000, 1000); err != nil {
		t.Errorf("the folder's owner cannot read it: %v", err)
	}
	if err := readAs(4242, 1001); err != nil {
		t.Errorf("a member of the folder's group cannot read it: %v", err)
	}
}

// Without an owner (a manager that is not root) the modes still hold, and
// a strict umask does not change them (the tests of this package do not
// run in parallel: the umask is the process's).
func TestFoldersModesWithoutOwner(t *testing.T) {
	host := t.TempDir()
	s := New(map[string]string{"h": host}, 0, 0, nil)
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	if err := s.Create("h", "f1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write("h", "f1", "d/x", strings.NewReader("x"), -1, nil); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{"f1": DirMode, "f1/d": DirMode, "f1/d/x": FileMode} {
		st, err := os.Stat(filepath.Join(host, path))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (umask 0077)", path, st.Mode().Perm(), want)
		}
	}
}
