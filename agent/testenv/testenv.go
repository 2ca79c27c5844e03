// Package testenv gives tests a real, private containerd and Berth's base
// image (docs/CONTAINERD.md). It is test support: import it only from
// _test.go files.
//
//	func TestRun(t *testing.T) {
//		socket := testenv.Containerd(t)         // private containerd, stopped at cleanup
//		ns := testenv.Namespace(t)              // a namespace no other test uses
//		testenv.ImportBaseImage(t, socket, ns)  // berth/base:latest, unpacked (overlayfs)
//		...
//	}
//
// Each Containerd call starts its own containerd (0.2-0.5 s here) in a short
// directory under os.TempDir() (unix socket paths are limited to 107 bytes),
// through scripts/containerd.sh; its cleanup kills every task, containerd and
// any shim left, unmounts what it mounted, removes the directory and fails the
// test if a process of it is still there. filepath.Dir(socket) is that
// directory: a runtime under test may put its runc root (runc options Root)
// and FIFOs (cio.WithFIFODir) there instead of under /run/containerd.
//
// Missing prerequisites (root; containerd, containerd-shim-runc-v2, runc and
// ctr; Debian's busybox-static for the image) skip the test, except when the
// environment variable CI is "true": then the test fails, saying what is
// missing. CI must never skip these tests silently.
//
// Directories of a test binary that died without its cleanups (killed by a
// timeout, say) are reclaimed by the next Containerd or BaseImage call of any
// test binary: containerd and its containers stopped, directory removed.
//
// A test binary may use Main from its TestMain to remove the base image
// built for it as soon as it ends; without Main the image (about 1 MB) is
// removed by a later test binary's reclaim.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BaseImageName is the name the base image has once imported.
const BaseImageName = "berth/base:latest"

// dirPrefix names every directory this package creates under os.TempDir();
// ownerFile in it says which process owns it.
const (
	dirPrefix = "bct"
	ownerFile = "berth-testenv-owner"
)

// extraPath is appended to PATH for the commands this package runs: runc is
// in /usr/sbin on Debian, which a non-login PATH may lack.
const extraPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Containerd starts a private containerd for t and returns its socket. It is
// stopped, with every container it runs, when t ends.
func Containerd(t testing.TB) (socket string) {
	t.Helper()
	return containerd(t, 0)
}

// ContainerdOnSmallDisk is Containerd with its root (content store and
// snapshots) on a tmpfs of rootBytes: a node whose image store fills up.
func ContainerdOnSmallDisk(t testing.TB, rootBytes int64) (socket string) {
	t.Helper()
	return containerd(t, rootBytes)
}

func containerd(t testing.TB, rootBytes int64) (socket string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (containerd needs it)")
	}
	for _, c := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr"} {
		if _, err := lookPath(c); err != nil {
			missing = append(missing, c+" (Debian package "+debianPackage(c)+", scripts/install-deps.sh)")
		}
	}
	unavailable(t, "a private containerd", missing)
	script := scriptPath(t, "containerd.sh")
	reapStale(t)

	dir := ownedDir(t, dirPrefix)
	socket = filepath.Join(dir, "containerd.sock")
	t.Cleanup(func() { stopContainerd(t, script, dir) })
	if rootBytes > 0 {
		// Unmounted by the script's stop, with everything under dir.
		root := filepath.Join(dir, "root")
		if err := os.MkdirAll(root, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size="+strconv.FormatInt(rootBytes, 10)); err != nil {
			t.Fatalf("mount a %d-byte tmpfs at %s: %v", rootBytes, root, err)
		}
	}

	start := time.Now()
	out, err := run(60*time.Second, "bash", script, "start", dir)
	if err != nil {
		t.Fatalf("scripts/containerd.sh start %s: %v\n%s%s", dir, err, out, logTail(dir))
	}
	t.Logf("private containerd at %s (started in %v)", socket, time.Since(start).Round(time.Millisecond))
	return socket
}

func stopContainerd(t testing.TB, script, dir string) {
	t.Helper()
	if t.Failed() {
		t.Logf("containerd log (%s):\n%s", dir, logTail(dir))
	}
	if out, err := run(90*time.Second, "bash", script, "stop", dir); err != nil {
		t.Errorf("scripts/containerd.sh stop %s: %v\n%s", dir, err, out)
	}
	if procs := processesUsing(dir); len(procs) > 0 {
		t.Errorf("still running after stopping the containerd in %s:\n%s", dir, strings.Join(procs, "\n"))
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("removing the containerd directory: %v", err)
	}
}

// Namespace returns a containerd namespace name no other test uses. Give
// each test its own: containerd's default cgroup path (/NAMESPACE/ID) and
// runc's default state (/run/containerd/runc/NAMESPACE/ID) are shared by
// every containerd on the machine, including those of tests running at the
// same time in other packages.
func Namespace(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "bt-" + hex.EncodeToString(b[:])
}

// baseImage is the tarball built for this test binary, once.
var baseImage struct {
	sync.Mutex
	dir, path string
}

// BaseImage returns the path of the berth/base:latest OCI tarball, built
// by scripts/build-base-image.sh once per test binary.
func BaseImage(t testing.TB) (tarPath string) {
	t.Helper()
	baseImage.Lock()
	defer baseImage.Unlock()
	if baseImage.path != "" {
		if _, err := os.Stat(baseImage.path); err == nil {
			return baseImage.path
		}
	}
	var missing []string
	for _, c := range []string{"bash", "tar", "gzip", "sha256sum"} {
		if _, err := lookPath(c); err != nil {
			missing = append(missing, c+" (scripts/install-deps.sh)")
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing = append(missing, "/bin/busybox (Debian package busybox-static, scripts/install-deps.sh)")
	}
	unavailable(t, "the base image", missing)
	script := scriptPath(t, "build-base-image.sh")
	reapStale(t)

	dir := ownedDir(t, dirPrefix+"-img-")
	path := filepath.Join(dir, "berth-base.tar")
	start := time.Now()
	if out, err := run(120*time.Second, "bash", script, path); err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("scripts/build-base-image.sh: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", BaseImageName, time.Since(start).Round(time.Millisecond))
	baseImage.dir, baseImage.path = dir, path
	return path
}

// ImportBaseImage imports (and unpacks, for the overlayfs snapshotter) the
// base image into namespace of the containerd at socket, with ctr.
func ImportBaseImage(t testing.TB, socket, namespace string) {
	t.Helper()
	tarPath := BaseImage(t)
	start := time.Now()
	if out, err := run(120*time.Second, "ctr", "--address", socket, "--namespace", namespace,
		"images", "import", tarPath); err != nil {
		t.Fatalf("ctr images import %s: %v\n%s%s", tarPath, err, out, logTail(filepath.Dir(socket)))
	}
	out, err := run(30*time.Second, "ctr", "--address", socket, "--namespace", namespace, "images", "ls", "-q")
	if err != nil {
		t.Fatalf("ctr images ls: %v\n%s", err, out)
	}
	for _, name := range strings.Fields(string(out)) {
		if name == BaseImageName {
			t.Logf("imported %s into namespace %s in %v", BaseImageName, namespace, time.Since(start).Round(time.Millisecond))
			return
		}
	}
	t.Fatalf("after importing %s, namespace %s has images %q, not %s", tarPath, namespace, out, BaseImageName)
}

// Main runs the tests of m and then removes the base image built for them.
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	baseImage.Lock()
	if baseImage.dir != "" {
		_ = os.RemoveAll(baseImage.dir)
		baseImage.dir, baseImage.path = "", ""
	}
	baseImage.Unlock()
	os.Exit(code)
}

// unavailable skips t (fails it when CI=true) if anything is missing.
func unavailable(t testing.TB, what string, missing []string) {
	t.Helper()
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("%s needs: %s", what, strings.Join(missing, "; "))
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
}

func debianPackage(cmd string) string {
	switch cmd {
	case "containerd-shim-runc-v2", "ctr":
		return "containerd"
	}
	return cmd
}

// searchPath is PATH with extraPath appended.
func searchPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p + ":" + extraPath
	}
	return extraPath
}

func lookPath(name string) (string, error) {
	for _, d := range filepath.SplitList(searchPath()) {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s", name, searchPath())
}

// run runs a command with PATH extended and returns its combined output.
func run(timeout time.Duration, name string, args ...string) ([]byte, error) {
	path, err := lookPath(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), "PATH="+searchPath())
	// containerd, started in the background by the script, must not hold
	// the output pipe open: the script redirects it, and WaitDelay bounds
	// any surprise.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %v)", err, timeout)
	}
	return out, err
}

// scriptPath finds scripts/NAME in the repository.
func scriptPath(t testing.TB, name string) string {
	t.Helper()
	p, err := findScript(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ownedDir makes a directory under os.TempDir() and records this process as
// its owner.
func ownedDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(processID(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// processID identifies a process across pid reuse: "PID STARTTIME", or ""
// if there is no such process.
func processID(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// Fields after the command name, which may hold spaces: state is
	// field 3, starttime field 22.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return strconv.Itoa(pid) + " " + f[19]
}

// reapStale stops and removes the directories of test processes that are
// gone.
func reapStale(t testing.TB) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or being created
		}
		id := strings.TrimSpace(string(owner))
		pid, err := strconv.Atoi(strings.Fields(id + " x")[0])
		if err != nil || processID(pid) == id {
			continue // still running
		}
		if _, err := os.Stat(filepath.Join(dir, "config.toml")); err == nil {
			if script, err := findScript("containerd.sh"); err == nil {
				if out, err := run(90*time.Second, "bash", script, "stop", dir); err != nil {
					t.Logf("reclaiming %s (owner %s is gone): %v\n%s", dir, id, err, out)
					continue
				}
			}
		}
		if procs := processesUsing(dir); len(procs) > 0 {
			continue
		}
		if err := os.RemoveAll(dir); err == nil {
			t.Logf("reclaimed %s, left by process %s", dir, id)
		}
	}
}

// findScript finds scripts/NAME in the repository, walking up from the
// working directory (the test's package directory) to go.mod.
func findScript(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "scripts", name)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("scripts/%s not found next to %s/go.mod", name, dir)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory, so no scripts/%s", name)
		}
		dir = parent
	}
}

// processesUsing lists the live processes whose command line names dir
// (containerd, its shims), as "PID: COMMAND LINE".
func processesUsing(dir string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		pid := filepath.Base(filepath.Dir(p))
		if pid == self {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 { // gone, or a zombie
			continue
		}
		line := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if strings.Contains(line, dir+"/") || strings.HasSuffix(line, dir) || strings.Contains(line, dir+" ") {
			found = append(found, pid+": "+line)
		}
	}
	return found
}

// logTail is the end of the containerd log in dir, for failure messages.
func logTail(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "--- containerd.log (end) ---\n" + strings.Join(lines, "\n") + "\n"
}

// RestartContainerd kills the private containerd of socket as a crash
// would (SIGKILL: its shims and their containers live on) and starts it
// again on the same directory, as systemd would.
func RestartContainerd(t testing.TB, socket string) {
	t.Helper()
	dir := filepath.Dir(socket)
	raw, err := os.ReadFile(filepath.Join(dir, "containerd.pid"))
	if err != nil {
		t.Fatalf("read containerd's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("containerd's pid %q: %v", raw, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill containerd (pid %d): %v", pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("containerd (pid %d) outlived SIGKILL for 30s", pid)
		}
		time.Sleep(10 * time.Millisecond) // a process outside the test: nothing to wait on
	}
	start := time.Now()
	if out, err := run(60*time.Second, "bash", scriptPath(t, "containerd.sh"), "start", dir); err != nil {
		t.Fatalf("scripts/containerd.sh start %s: %v\n%s%s", dir, err, out, logTail(dir))
	}
	t.Logf("containerd restarted in %v", time.Since(start).Round(time.Millisecond))
}
