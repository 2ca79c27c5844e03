package containerd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/agent/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is one test's private containerd with the base image imported.
type env struct {
	socket, ns string
	cfg        Config
}

func newEnv(t testing.TB, importBase bool) env {
	t.Helper()
	socket := testenv.Containerd(t)
	ns := testenv.Namespace(t)
	if importBase {
		testenv.ImportBaseImage(t, socket, ns)
	}
	dir := filepath.Dir(socket)
	return env{socket: socket, ns: ns, cfg: Config{
		Socket:    socket,
		Namespace: ns,
		LogDir:    filepath.Join(dir, "logs"),
		FIFODir:   filepath.Join(dir, "fifo"),
		RuncRoot:  filepath.Join(dir, "runc"),
		TempDir:   dir,
	}}
}

// runtime opens a Runtime on the env, closed when t ends.
func (e env) runtime(t testing.TB) *Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := New(ctx, e.cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func uniqueID(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func baseSpec(id string, cmd ...string) runtime.Spec {
	return runtime.Spec{
		ID:        id,
		SessionID: "sess-" + id,
		Index:     2,
		Image:     testenv.BaseImageName,
		Command:   cmd,
		Labels:    map[string]string{"team": "infra"},
	}
}

func find(cs []runtime.Container, id string) (runtime.Container, bool) {
	for _, c := range cs {
		if c.ID == id {
			return c, true
		}
	}
	return runtime.Container{}, false
}

// waitExited polls List until the container's task has exited.
func waitExited(t *testing.T, rt *Runtime, id string, within time.Duration) runtime.Container {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		cs, err := rt.List(testCtx(t))
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		c, ok := find(cs, id)
		if !ok {
			t.Fatalf("%s not listed", id)
		}
		if c.State == runtime.Exited {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %s after %s", id, c.State, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cgroupsPathOf reads the cgroup path from the container's stored spec.
func cgroupsPathOf(t *testing.T, rt *Runtime, id string) string {
	t.Helper()
	ctx := rt.ns(testCtx(t))
	c, err := rt.client.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s.Linux.CgroupsPath
}

func readCgroup(t *testing.T, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"/sys/fs/cgroup"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestRunAppliesLimitsToCgroup(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)
	id := uniqueID("limits")
	s := baseSpec(id, "sleep", "300")
	s.MilliCPU = 500
	s.MemoryBytes = 64 << 20
	started, err := rt.Run(ctx, s)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { rt.Remove(context.Background(), id) })
	if started.State != runtime.Running || started.Pid == 0 || started.SessionID != s.SessionID {
		t.Errorf("Run returned %+v", started)
	}

	path := cgroupsPathOf(t, rt, id)
	if path != "/"+e.ns+"/"+id {
		t.Errorf("cgroups path %q", path)
	}
	if rt.cg.v2 {
		if got := readCgroup(t, path, "cpu.max"); got != "50000 100000" {
			t.Errorf("cpu.max = %q", got)
		}
		if got := readCgroup(t, path, "memory.max"); got != "67108864" {
			t.Errorf("memory.max = %q", got)
		}
		if got := readCgroup(t, path, "pids.max"); got != "4096" {
			t.Errorf("pids.max = %q", got)
		}
	} else {
		for file, want := range map[string]string{
			"cpu/" + path + "/cpu.cfs_quota_us":               "50000",
			"cpu/" + path + "/cpu.cfs_period_us":              "100000",
			"memory/" + path + "/memory.limit_in_bytes":       "67108864",
			"memory/" + path + "/memory.memsw.limit_in_bytes": "67108864",
			"memory/" + path + "/memory.swappiness":           "0",
			"pids/" + path + "/pids.max":                      "4096",
		} {
			if !rt.cg.swapAccounting && strings.Contains(file, "memsw") {
				continue
			}
			if got := readCgroup(t, file); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
	}

	u, err := rt.Usage(ctx, id)
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if u.MemoryLimit != 64<<20 || u.MemoryWorkingSet <= 0 || u.CPUSeconds < 0 {
		t.Errorf("usage = %+v", u)
	}

	cs, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := find(cs, id)
	if !ok {
		t.Fatalf("%s not listed in %+v", id, cs)
	}
	if c.State != runtime.Running || c.Pid != started.Pid || c.SessionID != s.SessionID || c.Index != 2 ||
		c.Labels["team"] != "infra" || c.Image != testenv.BaseImageName || c.StartedAt.IsZero() {
		t.Errorf("listed %+v", c)
	}
}

func TestOOMKillIsReported(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)

	// tail keeps its whole input when it has no newline: 100 MB in 64 MiB.
	oomID := uniqueID("oom")
	s := baseSpec(oomID, "sh", "-c", "head -c 100000000 /dev/zero | tail")
	s.MemoryBytes = 64 << 20
	if _, err := rt.Run(ctx, s); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The control: killed by SIGKILL, exit 137 too, but no OOM.
	killedID := uniqueID("killed")
	k := baseSpec(killedID, "sleep", "300")
	k.MemoryBytes = 64 << 20
	if _, err := rt.Run(ctx, k); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := rt.Stop(ctx, killedID, 0); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	c := waitExited(t, rt, oomID, 60*time.Second)
	if c.ExitCode != 137 || !c.OOMKilled || c.ExitedAt.IsZero() {
		t.Errorf("OOM container listed as %+v, want exit 137 and OOMKilled", c)
	}
	// Each source of evidence works on its own: the kernel's counter...
	if n, ok := oomKills(rt.cfg.CgroupRoot, rt.cg.v2, cgroupsPathOf(t, rt, oomID)); !ok || n < 1 {
		t.Errorf("cgroup oom_kill count = %d (readable %v), want ≥ 1", n, ok)
	}
	// ...and containerd's /tasks/oom event, recorded as a label.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs, err := rt.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := find(cs, oomID); c.Labels[labelOOMKilled] == "true" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s label: the OOM event never arrived", labelOOMKilled)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctl := waitExited(t, rt, killedID, 10*time.Second)
	if ctl.ExitCode != 137 || ctl.OOMKilled {
		t.Errorf("SIGKILLed container listed as %+v, want exit 137 and not OOMKilled", ctl)
	}

	// An agent restarted after the exit (no events seen) still knows.
	rt.Close()
	rt2 := e.runtime(t)
	cs, err := rt2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := find(cs, oomID); !c.OOMKilled {
		t.Errorf("after restart: %+v, want OOMKilled", c)
	}
	if c, _ := find(cs, killedID); c.OOMKilled {
		t.Errorf("after restart: %+v, want not OOMKilled", c)
	}
}

func TestLogsAndExec(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)
	id := uniqueID("exec")
	if _, err := rt.Run(ctx, baseSpec(id, "sh", "-c", "echo hello; echo oops >&2; exec sleep 300")); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { rt.Remove(context.Background(), id) })

	deadline := time.Now().Add(10 * time.Second)
	for {
		rc, err := rt.Logs(ctx, id, time.Time{})
		if err != nil {
			t.Fatalf("Logs: %v", err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(b, []byte("hello\n")) && bytes.Contains(b, []byte("oops\n")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log is %q, want hello and oops", b)
		}
		time.Sleep(20 * time.Millisecond)
	}

	res, err := rt.Exec(ctx, id, []string{"echo", "hi"}, 10*time.Second)
	if err != nil || res.ExitCode != 0 || string(res.Stdout) != "hi\n" {
		t.Errorf("exec echo hi = %+v (stdout %q), %v", res, res.Stdout, err)
	}
	res, err = rt.Exec(ctx, id, []string{"sh", "-c", "echo err >&2; exit 3"}, 10*time.Second)
	if err != nil || res.ExitCode != 3 || string(res.Stderr) != "err\n" || len(res.Stdout) != 0 {
		t.Errorf("exec exit 3 = %+v, %v", res, err)
	}
	res, err = rt.Exec(ctx, id, []string{"pwd"}, 10*time.Second)
	if err != nil || string(res.Stdout) != "/home/work\n" {
		t.Errorf("exec pwd = %q, %v (want the image's working dir)", res.Stdout, err)
	}
	res, err = rt.Exec(ctx, id, []string{"head", "-c", "3000000", "/dev/zero"}, 10*time.Second)
	if err != nil || res.ExitCode != 0 || len(res.Stdout) != maxExecOutput {
		t.Errorf("exec of 3 MB output: %d bytes kept, exit %d, %v; want %d", len(res.Stdout), res.ExitCode, err, maxExecOutput)
	}

	_, err = rt.Exec(ctx, id, []string{"no-such-binary"}, 10*time.Second)
	if !errors.Is(err, ErrCommandNotFound) {
		t.Errorf("exec of a missing binary: %v, want ErrCommandNotFound", err)
	}
	t.Logf("missing binary: %v", err)
	_, err = rt.Exec(ctx, id, []string{"/no/such/path"}, 10*time.Second)
	if !errors.Is(err, ErrCommandNotFound) {
		t.Errorf("exec of a missing path: %v, want ErrCommandNotFound", err)
	}
	// A file that exists but cannot be executed is not "not found": runc
	// refuses it the same way, and the error says why.
	_, err = rt.Exec(ctx, id, []string{"/etc/passwd"}, 10*time.Second)
	if err == nil || errors.Is(err, ErrCommandNotFound) {
		t.Errorf("exec of a non-executable: %v", err)
	}
	t.Logf("non-executable: %v", err)

	start := time.Now()
	_, err = rt.Exec(ctx, id, []string{"sleep", "30"}, 500*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("exec past its timeout: %v after %v", err, time.Since(start))
	}
	// The container is unharmed by all this.
	if res, err := rt.Exec(ctx, id, []string{"true"}, 10*time.Second); err != nil || res.ExitCode != 0 {
		t.Errorf("exec true after the others: %+v, %v", res, err)
	}
}

func TestReattachAfterRestart(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)
	id := uniqueID("reattach")
	s := baseSpec(id, "sleep", "300")
	s.MemoryBytes = 32 << 20
	started, err := rt.Run(ctx, s)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	rt.Close() // the agent goes away; the container must not notice

	rt2 := e.runtime(t)
	cs, err := rt2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := find(cs, id)
	if !ok || c.State != runtime.Running || c.Pid != started.Pid || c.SessionID != s.SessionID {
		t.Fatalf("after restart: listed %+v (found %v), want running pid %d", c, ok, started.Pid)
	}
	if res, err := rt2.Exec(ctx, id, []string{"echo", "still here"}, 10*time.Second); err != nil || string(res.Stdout) != "still here\n" {
		t.Errorf("exec after restart: %+v, %v", res, err)
	}
	if u, err := rt2.Usage(ctx, id); err != nil || u.MemoryLimit != 32<<20 {
		t.Errorf("usage after restart: %+v, %v", u, err)
	}

	// sleep is pid 1 and ignores SIGTERM: Stop must escalate after grace.
	start := time.Now()
	if err := rt2.Stop(ctx, id, 300*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 15*time.Second {
		t.Errorf("Stop took %v", d)
	}
	c = waitExited(t, rt2, id, 5*time.Second)
	if c.ExitCode != 137 || c.OOMKilled {
		t.Errorf("stopped container: %+v", c)
	}
	if err := rt2.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("Stop of an exited container: %v, want nil", err)
	}
	if _, err := rt2.Exec(ctx, id, []string{"true"}, time.Second); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Exec in an exited container: %v, want ErrNotRunning", err)
	}
	if _, err := rt2.Usage(ctx, id); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Usage of an exited container: %v, want ErrNotRunning", err)
	}

	if err := rt2.Remove(ctx, id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	cs, err = rt2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(cs, id); ok {
		t.Errorf("%s still listed after Remove", id)
	}
	if _, err := os.Stat(rt2.logPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("live log file left after Remove: %v", err)
	}
	if _, err := os.Stat(rt2.endedLogPath(id)); err != nil {
		t.Errorf("the removed container's output was not kept: %v", err)
	}
	for what, err := range map[string]error{
		"Remove": rt2.Remove(ctx, id),
		"Stop":   rt2.Stop(ctx, id, time.Second),
	} {
		if !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("%s of a removed container: %v, want ErrNotFound", what, err)
		}
	}
	if rc, err := rt2.Logs(ctx, id, time.Time{}); err != nil {
		t.Errorf("Logs of a removed container: %v, want its kept output", err)
	} else {
		rc.Close()
	}
}

func TestStopGracefulAndRemoveRunning(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)

	// A shell that traps TERM exits on SIGTERM, well before grace.
	graceful := uniqueID("term")
	if _, err := rt.Run(ctx, baseSpec(graceful, "sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.1; done")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the trap be installed
	start := time.Now()
	if err := rt.Stop(ctx, graceful, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("SIGTERM ignored? Stop took %v", d)
	}
	if c := waitExited(t, rt, graceful, 5*time.Second); c.ExitCode != 7 {
		t.Errorf("exit %d, want 7 from the TERM trap", c.ExitCode)
	}

	// Remove kills a running task itself.
	running := uniqueID("rm")
	if _, err := rt.Run(ctx, baseSpec(running, "sleep", "300")); err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(ctx, running); err != nil {
		t.Fatalf("Remove of a running container: %v", err)
	}
	if err := rt.Remove(ctx, graceful); err != nil {
		t.Fatalf("Remove of an exited container: %v", err)
	}
	cs, err := rt.List(ctx)
	if err != nil || len(cs) != 0 {
		t.Errorf("after removing both: %+v, %v", cs, err)
	}
}

func TestContainerRemovedBehindTheRuntimesBack(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)
	id := uniqueID("behind")
	if _, err := rt.Run(ctx, baseSpec(id, "sleep", "300")); err != nil {
		t.Fatal(err)
	}

	// Someone else (an operator with ctr) deletes it.
	other, err := ctrd.New(e.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	octx := namespaces.WithNamespace(ctx, e.ns)
	c, err := other.LoadContainer(octx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(octx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.Delete(octx, ctrd.WithProcessKill); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(octx, ctrd.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}

	cs, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(cs, id); ok {
		t.Errorf("%s still listed after being deleted behind the runtime's back", id)
	}
	if _, err := rt.Usage(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Usage: %v, want ErrNotFound", err)
	}
	if err := rt.Stop(ctx, id, time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Stop: %v, want ErrNotFound", err)
	}
}

func TestRunErrors(t *testing.T) {
	e := newEnv(t, true)
	rt := e.runtime(t)
	ctx := testCtx(t)

	s := baseSpec(uniqueID("noimg"), "true")
	s.Image = "berth/absent:1"
	_, err := rt.Run(ctx, s)
	if !errors.Is(err, runtime.ErrImageNotFound) || !strings.Contains(err.Error(), "berth/absent:1") {
		t.Errorf("Run with a missing image: %v, want ErrImageNotFound naming it", err)
	}
	if _, err := rt.Run(ctx, baseSpec("bad/id", "true")); err == nil {
		t.Error("Run accepted an id with a slash")
	}

	// A command that does not exist fails Run (runc refuses to start it)
	// and leaves nothing behind, so the id can be reused.
	id := uniqueID("nocmd")
	_, err = rt.Run(ctx, baseSpec(id, "/no/such/command"))
	if !errors.Is(err, ErrCommandNotFound) {
		t.Fatalf("Run of a missing command: %v, want ErrCommandNotFound", err)
	}
	t.Logf("Run of a missing command: %v", err)
	cs, err := rt.List(ctx)
	if err != nil || len(cs) != 0 {
		t.Errorf("after a failed Run: %+v, %v", cs, err)
	}
	if _, err := rt.Run(ctx, baseSpec(id, "sleep", "300")); err != nil {
		t.Errorf("reusing the id of a failed Run: %v", err)
	}
	if _, err := rt.Run(ctx, baseSpec(id, "sleep", "300")); err == nil {
		t.Error("second Run with the same id succeeded")
	}
	if err := rt.Remove(ctx, id); err != nil {
		t.Error(err)
	}

	v, err := rt.Version(ctx)
	if err != nil || v == "" {
		t.Errorf("Version = %q, %v", v, err)
	}
}

func TestImportImage(t *testing.T) {
	e := newEnv(t, false)
	rt := e.runtime(t)
	ctx := testCtx(t)

	// Refused archives leave no image behind.
	for name, data := range map[string][]byte{
		"garbage": []byte(strings.Repeat("not a tarball ", 100)),
		"docker":  tarOf(t, []tarEntry{{name: "manifest.json", body: []byte("[]")}}),
	} {
		_, err := rt.ImportImage(ctx, bytes.NewReader(data))
		if !errors.Is(err, ErrNotOCIArchive) || !strings.Contains(err.Error(), "not an OCI image archive") {
			t.Errorf("%s: %v, want ErrNotOCIArchive", name, err)
		}
	}
	if imgs, err := rt.Images(ctx); err != nil || len(imgs) != 0 {
		t.Errorf("images after refused imports: %+v, %v", imgs, err)
	}

	f, err := os.Open(testenv.BaseImage(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	added, err := rt.ImportImage(ctx, f)
	if err != nil {
		t.Fatalf("ImportImage: %v", err)
	}
	if len(added) != 1 || added[0].Name != testenv.BaseImageName || !strings.HasPrefix(added[0].Digest, "sha256:") || added[0].Size <= 0 {
		t.Fatalf("imported %+v", added)
	}
	imgs, err := rt.Images(ctx)
	if err != nil || len(imgs) != 1 || imgs[0] != added[0] {
		t.Errorf("Images = %+v, %v; want %+v", imgs, err, added)
	}

	// Unpacked by the import: Run needs no unpack.
	img, err := rt.client.GetImage(rt.ns(ctx), testenv.BaseImageName)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := img.IsUnpacked(rt.ns(ctx), rt.cfg.Snapshotter); !ok || err != nil {
		t.Errorf("not unpacked after import: %v %v", ok, err)
	}
	id := uniqueID("imported")
	if _, err := rt.Run(ctx, baseSpec(id, "true")); err != nil {
		t.Fatalf("Run from the imported image: %v", err)
	}
	if c := waitExited(t, rt, id, 10*time.Second); c.ExitCode != 0 {
		t.Errorf("true exited %d", c.ExitCode)
	}

	// Importing again is harmless and reports the same image (used since:
	// a container was made from it).
	f.Seek(0, io.SeekStart)
	again, err := rt.ImportImage(ctx, f)
	if err != nil || len(again) != 1 || again[0].Name != added[0].Name || again[0].Digest != added[0].Digest ||
		again[0].Size != added[0].Size || !again[0].LastUsed.After(added[0].LastUsed) {
		t.Errorf("second import: %+v, %v", again, err)
	}
}

func TestNewUnreachable(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	_, err := New(ctx, Config{Socket: filepath.Join(dir, "nope.sock"), LogDir: dir})
	if err == nil || !strings.Contains(err.Error(), "containerd is not running at") {
		t.Errorf("no socket: %v", err)
	}

	// A socket file whose daemon is gone.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	start := time.Now()
	_, err = New(ctx, Config{Socket: stale, LogDir: dir})
	if err == nil || !strings.Contains(err.Error(), stale) {
		t.Errorf("stale socket: %v", err)
	}
	if d := time.Since(start); d > 2*dialTimeout {
		t.Errorf("New took %v to give up", d)
	}
	t.Logf("stale socket: %v", err)

	if _, err := New(ctx, Config{LogDir: dir}); err == nil {
		t.Error("no socket configured, no error")
	}
	if _, err := New(ctx, Config{Socket: stale}); err == nil {
		t.Error("no log dir configured, no error")
	}
}

func TestIDsThatAreNotFileNames(t *testing.T) {
	e := newEnv(t, false)
	rt := e.runtime(t)
	ctx := testCtx(t)
	for _, id := range []string{"../etc", "a/b", "", strconv.Quote("x")} {
		if _, err := rt.Logs(ctx, id, time.Time{}); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("Logs(%q): %v, want ErrNotFound", id, err)
		}
	}
}
