package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// TestSessionReadsAndWritesStorageFolders: with real containerd, a batch
// session reads a file uploaded through the API from a read-only group
// folder it cannot write to (a real read-only bind), and writes output into
// the user's own folder that the API then serves.
func TestSessionReadsAndWritesStorageFolders(t *testing.T) {
	t.Parallel()
	socket := testenv.Containerd(t)
	ns := testenv.Namespace(t)
	testenv.ImportBaseImage(t, socket, ns)
	hostDir := t.TempDir()
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
		FolderHosts: map[string]string{"local": hostDir}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	sc.admin = testcluster.Login(t, sc.s, testcluster.AdminEmail, testcluster.AdminPassword)
	sc.want(sc.do(sc.admin, http.MethodPost, "/v1/users", map[string]any{
		"email": "dev@example.com", "username": "dev", "password": "Passw0rd!", "role": api.RoleUser, "groups": []string{"default"}}), http.StatusCreated)
	sc.user = testcluster.Login(t, sc.s, "dev@example.com", "Passw0rd!")
	testcluster.Eventually(t, slowMachine, func() error {
		var l api.List[api.Agent]
		sc.do(sc.admin, http.MethodGet, "/v1/agents", nil).JSON(t, &l)
		if len(l.Items) != 1 || l.Items[0].Status != api.AgentAlive || len(l.Items[0].Images) == 0 {
			return fmt.Errorf("agents %+v", l.Items)
		}
		return nil
	})

	var group, out api.Folder
	r := sc.do(sc.admin, http.MethodPost, "/v1/folders", map[string]any{"name": "shared-data", "host": "local", "type": "group", "group": "default", "permission": "ro"})
	sc.want(r, http.StatusCreated)
	r.JSON(t, &group)
	r = sc.do(sc.user, http.MethodPost, "/v1/folders", map[string]any{"name": "out", "host": "local"})
	sc.want(r, http.StatusCreated)
	r.JSON(t, &out)
	put := func(token, folder, path, content string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, testcluster.URL(sc.s)+"/v1/folders/"+folder+"/files/"+path, bytes.NewReader([]byte(content)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload %s: status %d", path, resp.StatusCode)
		}
	}
	put(sc.admin, group.ID, "input.txt", "hello from the API\n")

	script := `set -e
cat /home/work/shared-data/input.txt > /home/work/out/copy.txt
if touch /home/work/shared-data/planted 2>/dev/null; then echo "the ro folder is writable"; exit 3; fi
grep ' /home/work/shared-data ' /proc/mounts | grep -q '[ ,]ro[ ,]' || { echo "not mounted ro"; exit 4; }
echo done > /home/work/out/status`
	r = sc.do(sc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": testenv.BaseImageName, "type": api.SessionBatch,
		"command": []string{"sh", "-c", script}, "resources": map[string]any{"cpu": 1, "mem": 1 << 30},
		"mounts": []string{"shared-data", "out"}})
	sc.want(r, http.StatusCreated)
	var s api.Session
	r.JSON(t, &s)
	ended := sc.wait(s.ID, api.SessionTerminated)
	if ended.ExitCode == nil || *ended.ExitCode != 0 {
		logs := sc.do(sc.admin, http.MethodGet, "/v1/sessions/"+s.ID+"/logs", nil)
		t.Fatalf("the session ended with %v (%+v): %s", ended.ExitCode, ended.StatusHistory, logs.Body)
	}
	get := func(path string) string {
		t.Helper()
		r := sc.do(sc.user, http.MethodGet, "/v1/folders/"+out.ID+"/files/"+path, nil)
		sc.want(r, http.StatusOK)
		return string(r.Body)
	}
	if got := get("copy.txt"); got != "hello from the API\n" {
		t.Errorf("the API serves copy.txt %q", got)
	}
	if got := get("status"); got != "done\n" {
		t.Errorf("status %q", got)
	}
	r = sc.do(sc.admin, http.MethodGet, "/v1/folders/"+group.ID+"/files/planted", nil)
	sc.want(r, http.StatusNotFound)

}
