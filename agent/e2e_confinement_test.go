package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// The attack, end to end on a real manager, agent and containerd: a
// user uploads a static binary into a folder, makes it setuid from inside a
// session, and hopes a host account that runs it becomes root; makes a
// device node; unshares a user namespace to get every capability. Each step
// must fail: the session runs as uid 1000 under seccomp with no capability,
// the folder is 0770 and mounted nosuid,nodev. Root in a container needs a
// policy with allow_root and still has no CAP_MKNOD and no unshare.
func TestASessionNeverGetsRootOnTheHost(t *testing.T) {
	t.Parallel()
	payload := buildEUIDProgram(t)
	socket := testenv.Containerd(t)
	ns := testenv.Namespace(t)
	testenv.ImportBaseImage(t, socket, ns)
	hostDir := t.TempDir()
	// Every directory above the folders is open, so that the folder's own
	// mode is the only thing between a host account and its files.
	for _, d := range []string{filepath.Dir(hostDir), hostDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := testcluster.StartDev(t, func(cfg *server.Config) {
		cfg.AgentToken = "agent-token"
		cfg.FolderHosts = map[string]string{"local": hostDir}
	})
	sc := &sessionCluster{t: t, s: c.Servers[0]}
	rt, err := containerd.New(context.Background(), containerd.Config{Socket: socket, Namespace: ns, LogDir: t.TempDir(), HomeDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	a, err := agent.New(agent.Config{Managers: []string{testcluster.URL(sc.s)}, Token: "agent-token", StateDir: t.TempDir(),
		HTTPAddr: "127.0.0.1:0", HeartbeatEvery: 200 * time.Millisecond, StopGrace: time.Second, Host: fourCores{},
		Runtime: rt, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test",
		FolderHosts: map[string]string{"local": hostDir}, FolderGID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	sc.admin = testcluster.Login(t, sc.s, testcluster.AdminEmail, testcluster.AdminPassword)
	r := sc.do(sc.admin, http.MethodPost, "/v1/users", map[string]any{
		"email": "eve@example.com", "username": "eve", "password": "Passw0rd!", "role": api.RoleUser})
	sc.want(r, http.StatusCreated)
	var eve struct {
		Keypair api.Keypair `json:"keypair"`
	}
	r.JSON(t, &eve)
	sc.user = testcluster.Login(t, sc.s, "eve@example.com", "Passw0rd!")
	testcluster.Eventually(t, slowMachine, func() error {
		var l api.List[api.Agent]
		sc.do(sc.admin, http.MethodGet, "/v1/agents", nil).JSON(t, &l)
		if len(l.Items) != 1 || l.Items[0].Status != api.AgentAlive || len(l.Items[0].Images) == 0 {
			return fmt.Errorf("agents %+v", l.Items)
		}
		return nil
	})

	var folder api.Folder
	r = sc.do(sc.user, http.MethodPost, "/v1/folders", map[string]any{"name": "tools", "host": "local"})
	sc.want(r, http.StatusCreated)
	r.JSON(t, &folder)
	upload(t, sc, folder.ID, "euid", payload)
	folderDir := filepath.Join(hostDir, folder.ID)
	file := filepath.Join(folderDir, "euid")
	wantOwned(t, folderDir, 0o770, 1000, 1000)
	wantOwned(t, file, 0o660, 1000, 1000)

	session := func(root bool) (string, func(...string) api.ExecResult) {
		t.Helper()
		body := map[string]any{"image": testenv.BaseImageName, "type": api.SessionInteractive, "command": []string{"sleep", "3600"},
			"resources": map[string]any{"cpu": 1, "mem": 1 << 30}, "mounts": []string{"tools"}}
		if root {
			body["run_as_root"] = true
		}
		r := sc.do(sc.user, http.MethodPost, "/v1/sessions", body)
		sc.want(r, http.StatusCreated)
		var s api.Session
		r.JSON(t, &s)
		sc.wait(s.ID, api.SessionRunning)
		return s.ID, func(cmd ...string) api.ExecResult {
			t.Helper()
			r := sc.do(sc.user, http.MethodPost, "/v1/sessions/"+s.ID+"/exec", map[string]any{"command": cmd})
			sc.want(r, http.StatusOK)
			var res api.ExecResult
			r.JSON(t, &res)
			return res
		}
	}
	says := func(t *testing.T, res api.ExecResult, want string) {
		t.Helper()
		if res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != want {
			t.Errorf("%+v, want exit 0 and %q", res, want)
		}
	}
	fails := func(t *testing.T, what string, res api.ExecResult) {
		t.Helper()
		if res.ExitCode == 0 {
			t.Errorf("%s succeeded: %+v", what, res)
		} else {
			t.Logf("%s refused: %s", what, strings.TrimSpace(res.Stderr))
		}
	}
	// attacks are what every session tries, root or not.
	attacks := func(t *testing.T, in func(...string) api.ExecResult) {
		says(t, in("sh", "-c", "grep '^Seccomp:' /proc/self/status | cut -f2"), "2")
		fails(t, "mknod /home/work/x c 1 3", in("mknod", "/home/work/x", "c", "1", "3"))
		fails(t, "mknod in the folder", in("mknod", "/home/work/tools/disk", "b", "8", "0"))
		fails(t, "unshare -U -r", in("unshare", "-U", "-r", "id", "-u"))
		line := in("grep", " /home/work/tools ", "/proc/self/mountinfo").Stdout
		if f := strings.Fields(line); len(f) < 6 || !strings.Contains(","+f[5]+",", ",nosuid,") || !strings.Contains(","+f[5]+",", ",nodev,") {
			t.Errorf("the folder's mount is %q, want nosuid and nodev", line)
		}
	}

	t.Run("as the default user", func(t *testing.T) {
		id, in := session(false)
		says(t, in("id", "-u"), "1000")
		says(t, in("whoami"), "work")
		says(t, in("sh", "-c", "echo $HOME $USER; pwd"), "/home/work work\n/home/work")
		attacks(t, in)
		says(t, in("sh", "-c", "chmod 4755 /home/work/tools/euid && stat -c %a /home/work/tools/euid"), "4755")
		fails(t, "chown to root", in("chown", "0:0", "/home/work/tools/euid"))
		// The host: an account outside the folder's group cannot reach the
		// file at all; one inside it runs it as the file's owner, 1000.
		if out, err := runAs(file, 65534); err == nil {
			t.Errorf("uid 65534 ran %s from a 0770 folder: %s", file, out)
		}
		if out, err := runAs(file, 65534, 1000); err != nil || out != "1000" {
			t.Errorf("uid 65534 in group 1000 ran the setuid file: euid %q, %v; want 1000 (never 0)", out, err)
		}
		sc.terminate(id)
		sc.wait(id, api.SessionTerminated)
	})

	t.Run("root is refused without allow_root", func(t *testing.T) {
		r := sc.do(sc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": testenv.BaseImageName, "type": api.SessionInteractive,
			"resources": map[string]any{"cpu": 1, "mem": 1 << 30}, "run_as_root": true})
		sc.want(r, http.StatusForbidden)
	})

	t.Run("as root under an allow_root policy", func(t *testing.T) {
		sc.want(sc.do(sc.admin, http.MethodPost, "/v1/resource-policies", map[string]any{"name": "rooty", "allow_root": true}), http.StatusCreated)
		sc.want(sc.do(sc.admin, http.MethodPatch, "/v1/keypairs/"+eve.Keypair.AccessKey, map[string]any{"resource_policy": "rooty"}), http.StatusOK)
		id, in := session(true)
		says(t, in("id", "-u"), "0")
		attacks(t, in)
		// Root keeps CHOWN and FSETID: it can leave a setuid-root file in
		// the folder. The folder's 0770 keeps every host account outside
		// its group away from it ...
		says(t, in("sh", "-c", "chown 0:0 /home/work/tools/euid && chmod 4755 /home/work/tools/euid && stat -c %u:%a /home/work/tools/euid"), "0:4755")
		if out, err := runAs(file, 65534); err == nil {
			t.Errorf("uid 65534 ran %s from a 0770 folder: %s", file, out)
		}
		// ... and one inside it would be root: the check above does detect
		// root, which is why a policy allows root only to people trusted
		// with the folders they mount (agent/DESIGN.md).
		if out, err := runAs(file, 65534, 1000); err != nil || out != "0" {
			t.Errorf("the setuid-root file run by a member of the folder's group: euid %q, %v; want 0 (the check must see root)", out, err)
		}
		sc.terminate(id)
		sc.wait(id, api.SessionTerminated)
	})
}

// buildEUIDProgram builds a static program that prints its effective uid:
// the payload an attacker would upload. (busybox, which the image has,
// drops a setuid bit itself and so could not tell.)
func buildEUIDProgram(t *testing.T) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() { fmt.Print(os.Geteuid()) }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "euid")
	cmd := exec.Command(goBin, "build", "-o", out, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GO111MODULE=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the payload: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func upload(t *testing.T, sc *sessionCluster, folder, path string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, testcluster.URL(sc.s)+"/v1/folders/"+folder+"/files/"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+sc.user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload %s: status %d", path, resp.StatusCode)
	}
}

func wantOwned(t *testing.T, path string, mode os.FileMode, uid, gid uint32) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != mode || sys.Uid != uid || sys.Gid != gid {
		t.Errorf("%s: %v %d:%d, want %v %d:%d", path, st.Mode().Perm(), sys.Uid, sys.Gid, mode, uid, gid)
	}
}

// runAs runs the program as an unprivileged host account (uid and gid
// 65534, the given supplementary groups) and returns what it printed.
func runAs(program string, uid uint32, groups ...uint32) (string, error) {
	cmd := exec.Command(program)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: groups}}
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}
