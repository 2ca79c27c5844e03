package agent_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/runtime/containerd"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/secrets"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/registrytest"
)

// Sessions whose image comes from a registry, end to end: a real manager
// (with a secrets key), a real agent on a private containerd that starts
// with no image at all, and Debian's docker-registry.

// startBareCluster is a manager with a secrets key and an agent whose
// containerd (at socket) has no image; the default policy holds 2 cores
// and 4 GiB; a user is made.
func startBareCluster(t *testing.T, socket string) *sessionCluster {
	t.Helper()
	return startBareClusterTB(t, socket, 200*time.Millisecond)
}

// startBareClusterTB is startBareCluster for benchmarks too, with the
// agent's heartbeat interval.
func startBareClusterTB(t testing.TB, socket string, heartbeat time.Duration) *sessionCluster {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	box, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.StartDev(t, func(cfg *server.Config) {
		cfg.AgentToken = "agent-token"
		cfg.Secrets = box
	})
	sc := &sessionCluster{t: t, s: c.Servers[0], socket: socket}
	rt, err := containerd.New(context.Background(), containerd.Config{Socket: socket, Namespace: testenv.Namespace(t), LogDir: t.TempDir(), HomeDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	sc.rt = rt
	a, err := agent.New(agent.Config{Managers: []string{testcluster.URL(sc.s)}, Token: "agent-token", StateDir: t.TempDir(),
		HTTPAddr: "127.0.0.1:0", HeartbeatEvery: heartbeat, StopGrace: time.Second, Host: fourCores{},
		Runtime: rt, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	sc.admin = testcluster.Login(t, sc.s, testcluster.AdminEmail, testcluster.AdminPassword)
	sc.want(sc.do(sc.admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{
		"total_resource_slots": map[string]any{"cpu": 2, "mem": 4 << 30}}), http.StatusOK)
	sc.want(sc.do(sc.admin, http.MethodPost, "/v1/users", map[string]any{
		"email": "dev@example.com", "username": "dev", "password": "Passw0rd!", "role": api.RoleUser}), http.StatusCreated)
	sc.user = testcluster.Login(t, sc.s, "dev@example.com", "Passw0rd!")
	testcluster.Eventually(t, slowMachine, func() error {
		var l api.List[api.Agent]
		sc.do(sc.admin, http.MethodGet, "/v1/agents", nil).JSON(t, &l)
		if len(l.Items) != 1 || l.Items[0].Status != api.AgentAlive {
			return fmt.Errorf("agents %+v", l.Items)
		}
		return nil
	})
	return sc
}

// startImage asks for a session of image: half a core, 256 MiB.
func (sc *sessionCluster) startImage(image string) *testcluster.Response {
	sc.t.Helper()
	return sc.do(sc.user, http.MethodPost, "/v1/sessions", map[string]any{"image": image, "type": "interactive",
		"resources": map[string]any{"cpu": 0.5, "mem": 256 << 20}})
}

func (sc *sessionCluster) created(r *testcluster.Response) api.Session {
	sc.t.Helper()
	sc.want(r, http.StatusCreated)
	var s api.Session
	r.JSON(sc.t, &s)
	return s
}

func (sc *sessionCluster) refused(r *testcluster.Response, says string) {
	sc.t.Helper()
	sc.want(r, http.StatusUnprocessableEntity)
	if !strings.Contains(string(r.Body), says) {
		sc.t.Fatalf("refusal %s does not say %q", r.Body, says)
	}
}

// agentOccupied is what the only agent holds, in millicores.
func (sc *sessionCluster) agentOccupied() (string, int64) {
	sc.t.Helper()
	var l api.List[api.Agent]
	sc.do(sc.admin, http.MethodGet, "/v1/agents", nil).JSON(sc.t, &l)
	return l.Items[0].ID, l.Items[0].Occupied["cpu"]
}

func TestSessionsPullTheirImageFromARegistry(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.Options{TLS: true, Users: map[string]string{"lab": "s3cret-pass"}})
	base := registrytest.OCIArchive(t, testenv.BaseImage(t))
	digest := reg.Push(base, "lab/base:1")
	reg.Push(registrytest.WithData(t, base, 1<<20, 1, 21), "lab/other:1")
	reg.Push(registrytest.WithData(t, base, 12<<20, 3, 22), "lab/big:1")
	// Pulls go through a slow link (the references name it), so that a
	// pull lasts long enough to be watched and broken.
	slow := reg.Throttled(1 << 20)
	sc := startBareCluster(t, testenv.Containerd(t))
	ref := func(repoTag string) string { return slow + "/" + repoTag }

	sc.want(sc.do(sc.admin, http.MethodPost, "/v1/registries", map[string]any{"name": "lab", "url": "https://" + slow,
		"username": "lab", "password": "s3cret-pass", "ca_pem": reg.CAPEM}), http.StatusCreated)

	// Refused at once, with the registry's words: a tag it does not have.
	sc.refused(sc.startImage(ref("lab/base:404")), "check the name and the tag")

	// PENDING → PREPARING with the pull's progress → RUNNING, and the
	// session records the digest it ran.
	s := sc.created(sc.startImage(ref("lab/base:1")))
	var progress string
	testcluster.Eventually(t, slowMachine, func() error {
		got := sc.get(s.ID)
		if got.Status == api.SessionPreparing && strings.HasPrefix(got.StatusInfo, "pulling "+ref("lab/base:1")+": ") && strings.HasSuffix(got.StatusInfo, " MiB") {
			progress = got.StatusInfo
			return nil
		}
		if got.Status == api.SessionRunning || got.Status == api.SessionError {
			return fmt.Errorf("session went %s (%s) before its pull was seen", got.Status, got.StatusInfo)
		}
		return fmt.Errorf("session is %s (%q)", got.Status, got.StatusInfo)
	})
	t.Logf("seen while pulling: %s", progress)
	got := sc.wait(s.ID, api.SessionRunning)
	if got.ImageDigest != digest || len(got.Containers) != 1 || got.Containers[0].ImageDigest != digest {
		t.Fatalf("session ran %q (containers %+v), want %s", got.ImageDigest, got.Containers, digest)
	}
	hist := []string{}
	for _, h := range got.StatusHistory {
		hist = append(hist, string(h.Status))
	}
	if strings.Join(hist, ",") != "PENDING,SCHEDULED,PREPARING,RUNNING" {
		t.Fatalf("history %v", hist)
	}

	// The image is on the agent now: a second session does not pull it
	// again; with its registry stopped, it could not.
	reg.Stop()
	s2 := sc.created(sc.startImage(ref("lab/base:1")))
	sc.wait(s2.ID, api.SessionRunning)
	reg.Restart()

	var images api.List[api.ClusterImage]
	sc.do(sc.admin, http.MethodGet, "/v1/images", nil).JSON(t, &images)
	agentID, _ := sc.agentOccupied()
	found := false
	for _, im := range images.Items {
		found = found || (im.Name == ref("lab/base:1") && im.Digest == digest && len(im.Agents) == 1 && im.Agents[0] == agentID)
	}
	if !found {
		t.Fatalf("GET /v1/images %+v lacks %s on %s", images.Items, ref("lab/base:1"), agentID)
	}
	// In use: the agent refuses to remove it.
	r := sc.do(sc.admin, http.MethodDelete, "/v1/images/"+ref("lab/base:1")+"?agent="+agentID, nil)
	sc.want(r, http.StatusConflict)

	// The password changed after a session was created: its pull fails
	// with the registry's words. The session waits (concurrency 2/2)
	// while the password is changed under it.
	sc.want(sc.do(sc.admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{"max_concurrent_sessions": 2}), http.StatusOK)
	s3 := sc.created(sc.startImage(ref("lab/other:1")))
	if st := sc.get(s3.ID).Status; st != api.SessionPending {
		t.Fatalf("third session is %s, want PENDING behind the concurrency limit", st)
	}
	sc.want(sc.do(sc.admin, http.MethodPatch, "/v1/registries/lab", map[string]any{"password": "changed-wrongly"}), http.StatusOK)
	sc.terminate(s.ID)
	failed := sc.wait(s3.ID, api.SessionError)
	if !strings.HasPrefix(failed.StatusInfo, "image-pull-failed: ") || !strings.Contains(failed.StatusInfo, "401 Unauthorized") {
		t.Fatalf("session ended %q, want image-pull-failed with the registry's 401", failed.StatusInfo)
	}
	// A wrong password is refused at create for an image nobody has.
	sc.refused(sc.startImage(ref("lab/big:1")), "401 Unauthorized")
	sc.want(sc.do(sc.admin, http.MethodPatch, "/v1/registries/lab", map[string]any{"password": "s3cret-pass"}), http.StatusOK)
	sc.want(sc.do(sc.admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{"max_concurrent_sessions": nil}), http.StatusOK)

	// A pull ahead of time, seen under way in GET /v1/images, then
	// removed from the agent.
	r = sc.do(sc.admin, http.MethodPost, "/v1/images/pull", map[string]any{"image": ref("lab/other:1"), "agents": []string{agentID}})
	sc.want(r, http.StatusAccepted)
	testcluster.Eventually(t, slowMachine, func() error {
		var l api.List[api.ClusterImage]
		sc.do(sc.admin, http.MethodGet, "/v1/images", nil).JSON(t, &l)
		for _, im := range l.Items {
			if im.Name == ref("lab/other:1") && len(im.Agents) == 1 {
				return nil
			}
		}
		return fmt.Errorf("images %+v", l.Items)
	})
	sc.want(sc.do(sc.admin, http.MethodDelete, "/v1/images/"+ref("lab/other:1")+"?agent="+agentID, nil), http.StatusNoContent)
	sc.want(sc.do(sc.admin, http.MethodDelete, "/v1/images/"+ref("lab/other:1")+"?agent="+agentID, nil), http.StatusNotFound)
	// A user may do neither.
	sc.want(sc.do(sc.user, http.MethodPost, "/v1/images/pull", map[string]any{"image": ref("lab/other:1")}), http.StatusForbidden)
	sc.want(sc.do(sc.user, http.MethodDelete, "/v1/images/"+ref("lab/base:1")+"?agent="+agentID, nil), http.StatusForbidden)

	// The registry stops in the middle of a pull: the session ends ERROR
	// with the reason, the agent's slots are free again, and nothing
	// half-pulled is listed.
	_, before := sc.agentOccupied()
	s4 := sc.created(sc.startImage(ref("lab/big:1")))
	testcluster.Eventually(t, slowMachine, func() error {
		got := sc.get(s4.ID)
		if got.Status == api.SessionPreparing && strings.Contains(got.StatusInfo, "MiB") && !strings.HasPrefix(got.StatusInfo, "pulling "+ref("lab/big:1")+": 0.0/") {
			return nil
		}
		return fmt.Errorf("session is %s (%q)", got.Status, got.StatusInfo)
	})
	reg.Stop()
	broken := sc.wait(s4.ID, api.SessionError)
	if !strings.HasPrefix(broken.StatusInfo, "image-pull-failed: ") {
		t.Fatalf("session ended %q, want image-pull-failed", broken.StatusInfo)
	}
	t.Logf("broken pull: %s", broken.StatusInfo)
	testcluster.Eventually(t, slowMachine, func() error {
		if _, now := sc.agentOccupied(); now != before {
			return fmt.Errorf("agent holds %d millicores, %d before the session", now, before)
		}
		return nil
	})
	var after api.List[api.ClusterImage]
	sc.do(sc.admin, http.MethodGet, "/v1/images", nil).JSON(t, &after)
	for _, im := range after.Items {
		if im.Name == ref("lab/big:1") && len(im.Agents) > 0 {
			t.Fatalf("a half-pulled image is listed: %+v", im)
		}
	}
}

// A node whose image store is full: the session ends ERROR saying so, and
// frees its slots.
func TestAPullOntoAFullNodeEndsTheSessionSayingSo(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.Options{})
	base := registrytest.OCIArchive(t, testenv.BaseImage(t))
	// The ~100 MB image, in 4 layers, onto a 64 MiB store.
	reg.Push(registrytest.WithData(t, base, 100<<20, 4, 23), "lab/huge:1")
	sc := startBareCluster(t, testenv.ContainerdOnSmallDisk(t, 64<<20))
	sc.want(sc.do(sc.admin, http.MethodPost, "/v1/registries", map[string]any{"name": "lab", "url": "http://" + reg.Host,
		"insecure_http": true}), http.StatusCreated)
	s := sc.created(sc.startImage(reg.Ref("lab/huge:1")))
	failed := sc.wait(s.ID, api.SessionError)
	if !strings.HasPrefix(failed.StatusInfo, "image-pull-failed: ") || !strings.Contains(failed.StatusInfo, "image store is full") {
		t.Fatalf("session ended %q", failed.StatusInfo)
	}
	if _, held := sc.agentOccupied(); held != 0 {
		t.Fatalf("the agent still holds %d millicores", held)
	}
}
