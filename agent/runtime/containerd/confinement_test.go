package containerd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cluster/berth/agent/runtime"
)

// Attacks from inside a container on a real containerd, as its default user
// and as root: each must fail. The kernel, not the spec, has the last word,
// so every check reads what the process really got.
func TestContainerConfinement(t *testing.T) {
	e := newEnv(t, true)
	e.cfg.HomeDir = filepath.Join(filepath.Dir(e.socket), "homes")
	rt := e.runtime(t)
	ctx := testCtx(t)
	folder := t.TempDir()
	if err := os.Chown(folder, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(folder, 0o770); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name   string
		user   runtime.User
		capEff string // CapEff in /proc/self/status
	}{
		{"non-root", runtime.User{UID: 1000, GID: 1000}, "0000000000000000"},
		// CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
		{"root", runtime.User{}, "00000000000005fb"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := uniqueID("conf")
			s := baseSpec(id, "sleep", "300")
			s.User, s.Home, s.WorkingDir = c.user, "/home/work", "/home/work"
			s.Mounts = []runtime.Mount{{Source: folder, Target: "/home/work/data"}}
			if _, err := rt.Run(ctx, s); err != nil {
				t.Fatal(err)
			}
			home := filepath.Join(e.cfg.HomeDir, id)
			st, err := os.Stat(home)
			if err != nil {
				t.Fatal(err)
			}
			if sys := st.Sys().(*syscall.Stat_t); sys.Uid != c.user.UID || sys.Gid != c.user.GID || st.Mode().Perm() != 0o750 {
				t.Errorf("home on the host: %d:%d %04o, want %d:%d 0750", sys.Uid, sys.Gid, st.Mode().Perm(), c.user.UID, c.user.GID)
			}
			sh := func(script string) (string, int) {
				t.Helper()
				res, err := rt.Exec(ctx, id, []string{"sh", "-c", script}, 20*time.Second)
				if err != nil {
					t.Fatalf("exec %q: %v", script, err)
				}
				return strings.TrimSpace(string(res.Stdout) + string(res.Stderr)), res.ExitCode
			}
			mustSay := func(script, want string) {
				t.Helper()
				if out, code := sh(script); code != 0 || out != want {
					t.Errorf("%s: %q (exit %d), want %q", script, out, code, want)
				}
			}
			mustFail := func(script string) {
				t.Helper()
				if out, code := sh(script); code == 0 {
					t.Errorf("%s succeeded: %q", script, out)
				} else {
					t.Logf("%s: refused as it must be (exit %d): %s", script, code, out)
				}
			}
			mustSay("grep '^Seccomp:' /proc/self/status | cut -f2", "2")
			mustSay("grep '^NoNewPrivs:' /proc/self/status | cut -f2", "1")
			mustSay("id -u; id -g", fmt.Sprintf("%d\n%d", c.user.UID, c.user.GID))
			mustSay("grep '^CapEff:' /proc/self/status | cut -f2", c.capEff)
			mustSay("grep '^CapBnd:' /proc/self/status | cut -f2", "00000000000005fb")
			mustSay("echo $HOME; pwd; touch /home/work/mine /home/work/data/"+c.name+" && echo written", "/home/work\n/home/work\nwritten")
			mustFail("mknod /home/work/x c 1 3")
			mustFail("mknod /tmp/x c 1 3")
			mustFail("unshare -U -r id -u")
			mustFail("unshare -m true")
			mustFail("chroot / true")
			for _, target := range []string{"/home/work", "/home/work/data"} {
				line, _ := sh("grep ' " + target + " ' /proc/self/mountinfo")
				opts := strings.Split(strings.Fields(line + " x x x x x x")[5], ",")
				if !contains(opts, "nosuid") || !contains(opts, "nodev") {
					t.Errorf("%s mounted with %q, want nosuid and nodev (mountinfo: %s)", target, opts, line)
				}
			}

			if err := rt.Remove(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(home); !os.IsNotExist(err) {
				t.Errorf("home %s after Remove: %v, want it gone", home, err)
			}
		})
	}
}

// The same unshare under a profile that allows everything (an operator's
// explicit -seccomp-profile) succeeds: the check above fails for the right
// reason, the default profile, not for a missing applet or a kernel rule.
func TestSeccompProfileDecidesUnshare(t *testing.T) {
	e := newEnv(t, true)
	e.cfg.HomeDir = filepath.Join(filepath.Dir(e.socket), "homes")
	e.cfg.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	rt := e.runtime(t)
	ctx := testCtx(t)
	id := uniqueID("allow")
	s := baseSpec(id, "sleep", "300")
	s.User, s.Home = runtime.User{UID: 1000, GID: 1000}, "/home/work"
	if _, err := rt.Run(ctx, s); err != nil {
		t.Fatal(err)
	}
	res, err := rt.Exec(ctx, id, []string{"unshare", "-U", "-r", "id", "-u"}, 20*time.Second)
	if err != nil || res.ExitCode != 0 || strings.TrimSpace(string(res.Stdout)) != "0" {
		t.Fatalf("unshare -U -r under an allow-all profile: %+v (%s%s), %v; want root in a new user namespace", res, res.Stdout, res.Stderr, err)
	}
}

// A home whose user lies outside the user namespace's range, and a home
// dir left by a container that died mid-start, are handled before any
// container exists.
func TestHomeLeftoversAndRange(t *testing.T) {
	e := newEnv(t, true)
	e.cfg.HomeDir = filepath.Join(filepath.Dir(e.socket), "homes")
	rt := e.runtime(t)
	ctx := testCtx(t)
	id := uniqueID("stale")
	stale := filepath.Join(e.cfg.HomeDir, id)
	if err := os.MkdirAll(filepath.Join(stale, "old"), 0o777); err != nil {
		t.Fatal(err)
	}
	s := baseSpec(id, "sleep", "300")
	s.User, s.Home = runtime.User{UID: 1000, GID: 1000}, "/home/work"
	if _, err := rt.Run(ctx, s); err != nil {
		t.Fatal(err)
	}
	res, err := rt.Exec(ctx, id, []string{"ls", "-A", "/home/work"}, 20*time.Second)
	if err != nil || len(res.Stdout) != 0 {
		t.Errorf("home of a new container holds %q (%v), want a fresh, empty one", res.Stdout, err)
	}
	// The same id again: refused, and the living container's home stays.
	if _, err := rt.Run(ctx, s); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Run of %s: %v, want already exists", id, err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("the running container's home: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// With a user namespace map, root in a container is the map's first host
// id, the image's files are the mapped root's, and a home belongs to the
// host id its user maps to.
func TestUserNamespaceRemap(t *testing.T) {
	e := newEnv(t, true)
	dir := filepath.Dir(e.socket)
	// The remapped root must reach the rootfs under containerd's state
	// directory and the homes: search permission for others above them.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	e.cfg.HomeDir = filepath.Join(dir, "homes")
	e.cfg.UserNS = &IDMap{HostUID: 300000, HostGID: 300000, Size: 65536}
	rt := e.runtime(t)
	ctx := testCtx(t)
	for _, c := range []struct {
		name string
		user runtime.User
	}{{"root", runtime.User{}}, {"non-root", runtime.User{UID: 1000, GID: 1000}}} {
		t.Run(c.name, func(t *testing.T) {
			id := uniqueID("userns")
			s := baseSpec(id, "sleep", "300")
			s.User, s.Home = c.user, "/home/work"
			if _, err := rt.Run(ctx, s); err != nil {
				t.Fatal(err)
			}
			res, err := rt.Exec(ctx, id, []string{"sh", "-c", "id -u; tr -s ' ' < /proc/self/uid_map; grep '^Seccomp:' /proc/self/status | cut -f2; stat -c %u /bin/busybox; touch /home/work/f && echo ok"}, 20*time.Second)
			want := fmt.Sprintf("%d\n 0 300000 65536\n2\n0\nok\n", c.user.UID)
			if err != nil || string(res.Stdout) != want {
				t.Fatalf("in the container: %q (%s), %v; want %q", res.Stdout, res.Stderr, err, want)
			}
			st, err := os.Stat(filepath.Join(e.cfg.HomeDir, id, "f"))
			if err != nil {
				t.Fatal(err)
			}
			if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 300000+c.user.UID {
				t.Errorf("a file the container made is host uid %d, want %d", uid, 300000+c.user.UID)
			}
		})
	}
	// A user the map does not cover is refused before anything is made.
	s := baseSpec(uniqueID("outside"), "true")
	s.User = runtime.User{UID: 70000, GID: 70000}
	if _, err := rt.Run(ctx, s); err == nil || !strings.Contains(err.Error(), "outside the user namespace") {
		t.Errorf("Run as uid 70000 under a 65536-id map: %v", err)
	}
}
