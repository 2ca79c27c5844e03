package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// ctr runs ctr against socket in namespace ns.
func ctr(t *testing.T, socket, ns string, args ...string) string {
	t.Helper()
	out, err := run(60*time.Second, "ctr", append([]string{"--address", socket, "--namespace", ns}, args...)...)
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestContainerd starts a private containerd, imports the base image, runs a
// container to completion and leaves one running, then checks that the
// cleanup left nothing behind.
func TestContainerd(t *testing.T) {
	var dir, ns string
	ran := t.Run("run", func(t *testing.T) {
		socket := Containerd(t)
		dir = filepath.Dir(socket)
		ns = Namespace(t)
		if !strings.HasPrefix(dir, os.TempDir()) || len(socket) > 100 {
			t.Errorf("socket %s: want a short path under %s", socket, os.TempDir())
		}
		if out := ctr(t, socket, ns, "version"); !strings.Contains(out, "Server:") {
			t.Fatalf("ctr version: no server in\n%s", out)
		}
		// The private containerd has its own config and nothing of the
		// system's.
		cfg, err := os.ReadFile(filepath.Join(dir, "config.toml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`root = "` + dir + `/root"`, `state = "` + dir + `/state"`, `"io.containerd.grpc.v1.cri"`} {
			if !strings.Contains(string(cfg), want) {
				t.Errorf("config.toml lacks %s", want)
			}
		}

		ImportBaseImage(t, socket, ns)
		if out := ctr(t, socket, ns, "images", "ls", "-q"); !strings.Contains(out, BaseImageName) {
			t.Fatalf("images: %q", out)
		}
		// Snapshots are made by overlayfs.
		if out := ctr(t, socket, ns, "snapshots", "--snapshotter", "overlayfs", "ls"); !strings.Contains(out, "sha256:") {
			t.Errorf("no overlayfs snapshot after import:\n%s", out)
		}

		start := time.Now()
		out := ctr(t, socket, ns, "run", "--rm", "--runc-root", filepath.Join(dir, "runc"), "--fifo-dir", filepath.Join(dir, "fifo"),
			BaseImageName, "t1", "/bin/echo", "hi")
		if out != "hi\n" {
			t.Errorf("ctr run echo hi: %q", out)
		}
		t.Logf("ctr run --rm echo hi: %v", time.Since(start).Round(time.Millisecond))

		// The image's config: working directory, PATH, /etc/passwd.
		out = ctr(t, socket, ns, "run", "--rm", "--runc-root", filepath.Join(dir, "runc"), "--fifo-dir", filepath.Join(dir, "fifo"),
			BaseImageName, "t2", "sh", "-c", `pwd; id -u; echo "$PATH"; test -d /tmp && test -w /tmp && echo tmp`)
		want := "/home/work\n0\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\ntmp\n"
		if out != want {
			t.Errorf("in the container: %q, want %q", out, want)
		}

		// Left running: the cleanup must kill it, and its shim.
		ctr(t, socket, ns, "run", "-d", "--null-io", "--runc-root", filepath.Join(dir, "runc"), BaseImageName, "sleeper", "sleep", "600")
		if out := ctr(t, socket, ns, "tasks", "ls"); !strings.Contains(out, "RUNNING") {
			t.Fatalf("tasks: %s", out)
		}
		if len(processesUsing(dir)) < 2 {
			t.Fatalf("want containerd and a shim running, have %q", processesUsing(dir))
		}
	})
	if !ran || dir == "" {
		t.SkipNow() // the subtest said why
	}
	if procs := processesUsing(dir); len(procs) > 0 {
		t.Errorf("after cleanup, still running: %q", procs)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after cleanup, %s: %v", dir, err)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if bytes.Contains(mounts, []byte(dir+"/")) {
		t.Errorf("after cleanup, mounts under %s remain", dir)
	}
	if cg, _ := filepath.Glob("/sys/fs/cgroup/*/" + ns); len(cg) > 0 {
		t.Errorf("after cleanup, cgroups remain: %q", cg)
	}
}

// TestContainerdRecoversFromCrash: containerd killed with its containers
// running (as when a test binary dies) is cleaned up all the same.
func TestContainerdRecoversFromCrash(t *testing.T) {
	var dir, ns string
	ran := t.Run("run", func(t *testing.T) {
		socket := Containerd(t)
		dir = filepath.Dir(socket)
		ns = Namespace(t)
		ImportBaseImage(t, socket, ns)
		ctr(t, socket, ns, "run", "-d", "--null-io", "--runc-root", filepath.Join(dir, "runc"), BaseImageName, "sleeper", "sh", "-c", "sleep 600 & sleep 600")
		pid, err := os.ReadFile(filepath.Join(dir, "containerd.pid"))
		if err != nil {
			t.Fatal(err)
		}
		if err := exec.Command("kill", "-9", strings.TrimSpace(string(pid))).Run(); err != nil {
			t.Fatal(err)
		}
	})
	if !ran || dir == "" {
		t.SkipNow()
	}
	if procs := processesUsing(dir); len(procs) > 0 {
		t.Errorf("after cleanup, still running: %q", procs)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after cleanup, %s: %v", dir, err)
	}
	if cg, _ := filepath.Glob("/sys/fs/cgroup/*/" + ns); len(cg) > 0 {
		t.Errorf("after cleanup, cgroups remain: %q", cg)
	}
}

// TestBaseImage checks the tarball's layout, config and file system, and
// that a second build gives the same bytes.
func TestBaseImage(t *testing.T) {
	path := BaseImage(t)
	if again := BaseImage(t); again != path {
		t.Errorf("BaseImage built twice: %s, %s", path, again)
	}
	files := readTar(t, path, false)
	var layout struct {
		ImageLayoutVersion string `json:"imageLayoutVersion"`
	}
	unmarshal(t, files["oci-layout"], &layout)
	if layout.ImageLayoutVersion != "1.0.0" {
		t.Errorf("oci-layout: %q", files["oci-layout"])
	}
	type descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	unmarshal(t, files["index.json"], &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json: %s", files["index.json"])
	}
	m := index.Manifests[0]
	if m.Annotations["io.containerd.image.name"] != BaseImageName || m.Annotations["org.opencontainers.image.ref.name"] != "latest" {
		t.Errorf("index.json annotations: %v", m.Annotations)
	}
	blob := func(d descriptor) []byte {
		t.Helper()
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
		if !ok {
			t.Fatalf("no blob %s", d.Digest)
		}
		if sum := sha256.Sum256(b); "sha256:"+hex.EncodeToString(sum[:]) != d.Digest || int64(len(b)) != d.Size {
			t.Fatalf("blob %s: wrong digest or size", d.Digest)
		}
		return b
	}
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	unmarshal(t, blob(m), &manifest)
	var config struct {
		Config struct {
			Entrypoint []string
			Cmd        []string
			Env        []string
			WorkingDir string
		} `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	unmarshal(t, blob(manifest.Config), &config)
	c := config.Config
	if c.Entrypoint != nil || strings.Join(c.Cmd, " ") != "/bin/sh" || c.WorkingDir != "/home/work" ||
		len(c.Env) != 1 || !strings.HasPrefix(c.Env[0], "PATH=") {
		t.Errorf("config: %+v", c)
	}
	if len(manifest.Layers) != 1 || manifest.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("layers: %+v", manifest.Layers)
	}
	layer := blob(manifest.Layers[0])
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("diff_ids %v do not match the layer", config.RootFS.DiffIDs)
	}
	fs := readTarBytes(t, raw, true)
	for name, want := range map[string]string{
		"bin/busybox": "file", "bin/sh": "link busybox", "bin/echo": "link busybox", "bin/sleep": "link busybox",
		"bin/ls": "link busybox", "bin/cat": "link busybox", "bin/dd": "link busybox", "bin/id": "link busybox",
		"usr/bin/env": "link ../../bin/busybox", "etc/passwd": "file", "etc/group": "file",
		"tmp/": "dir 1777", "home/work/": "dir 755", "root/": "dir 700",
	} {
		if got := fs[name]; !strings.HasPrefix(string(got), want) {
			t.Errorf("layer: %s is %q, want %q", name, got, want)
		}
	}
	if !strings.Contains(string(fs["etc/passwd"]), "root:x:0:0:") || !strings.Contains(string(fs["etc/passwd"]), "work:x:1000:1000:work:/home/work:") {
		t.Errorf("etc/passwd: %q", fs["etc/passwd"])
	}

	// Reproducible: a second build is byte for byte the same.
	again := filepath.Join(t.TempDir(), "again.tar")
	if out, err := run(120*time.Second, "bash", scriptPath(t, "build-base-image.sh"), again); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Errorf("two builds differ (%d and %d bytes)", len(a), len(b))
	}
}

// TestContainerdScriptRefusesLongDir: unix socket paths are short.
func TestContainerdScriptRefusesLongDir(t *testing.T) {
	long := "/tmp/" + strings.Repeat("d", 100)
	out, err := run(30*time.Second, "bash", scriptPath(t, "containerd.sh"), "start", long)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "too long for a unix socket") {
		t.Errorf("start with a long DIR: %v\n%s", err, out)
	}
	if _, err := os.Stat(long); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the long DIR was created")
		_ = os.RemoveAll(long)
	}
}

func TestNamespace(t *testing.T) {
	a, b := Namespace(t), Namespace(t)
	if a == b || len(a) > 76 || !strings.HasPrefix(a, "bt-") {
		t.Errorf("Namespace: %q, %q", a, b)
	}
}

func unmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

func readTar(t *testing.T, path string, describe bool) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readTarBytes(t, b, describe)
}

// readTarBytes maps each entry's name to its content, or, with describe, to
// "file CONTENT", "link TARGET" or "dir MODE". Entries must be sorted, owned by 0:0
// and dated SOURCE_DATE_EPOCH 0.
func readTarBytes(t *testing.T, b []byte, describe bool) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	prev := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name <= prev || strings.HasPrefix(h.Name, "./") || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 {
			t.Errorf("tar entry %s (after %s): uid %d gid %d mtime %v: want sorted, no ./, 0:0, mtime 0", h.Name, prev, h.Uid, h.Gid, h.ModTime)
		}
		prev = h.Name
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if describe {
			switch h.Typeflag {
			case tar.TypeSymlink:
				data = []byte("link " + h.Linkname)
			case tar.TypeDir:
				data = []byte("dir " + strings.TrimPrefix(modeString(h.Mode), "0"))
			default:
				data = append([]byte("file "), data...)
			}
		}
		files[h.Name] = data
	}
}

func modeString(m int64) string {
	perm := m & 0o777
	if m&0o1000 != 0 { // sticky
		perm |= 0o1000
	}
	s := ""
	for perm > 0 || s == "" {
		s = string(rune('0'+perm%8)) + s
		perm /= 8
	}
	return s
}
