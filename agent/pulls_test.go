package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// pullingConverger is a converger whose missing images are pulled.
func pullingConverger(rt *fakeRuntime, stall time.Duration) *converger {
	c := newTestConverger(rt, &clock{now: time.Unix(1000, 0)})
	c.pulls = newPuller(rt, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now, stall, nil)
	return c
}

// gate holds pulls until opened, reporting half the bytes meanwhile.
type gate struct {
	open    chan struct{}
	err     error
	started chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{open: make(chan struct{}), started: make(chan struct{})} }

func (g *gate) pull(ctx context.Context, req runtime.PullRequest) error {
	g.once.Do(func() { close(g.started) })
	if req.Progress != nil {
		req.Progress(312<<20, 1024<<20)
	}
	select {
	case <-g.open:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestContainersNeedingOneImageShareOnePull(t *testing.T) {
	rt := newFakeRuntime()
	g := newGate()
	rt.pull = g.pull
	c := pullingConverger(rt, time.Minute)
	creds := []api.RegistryCredentials{{Name: "lab", Host: "127.0.0.1:5000", Username: "u", Password: "p"}}
	c.setDesired([]api.DesiredContainer{desired("a", "python:3.12"), desired("b", "python:3.12")})
	c.setRegistries(creds)
	ctx := context.Background()
	_ = c.converge(ctx)
	<-g.started
	_ = c.converge(ctx) // a second pass joins, never starts another pull
	r := reportByID(t, c)
	for _, id := range []string{"a", "b"} {
		if r[id].Status != api.ContainerPulling || r[id].Reason != "pulling python:3.12: 312/1,024 MiB" {
			t.Fatalf("container %s reported %+v while its image is pulled", id, r[id])
		}
	}
	if pulls := c.pulls.report(); len(pulls) != 1 || pulls[0].DoneBytes != 312<<20 || pulls[0].TotalBytes != 1024<<20 {
		t.Fatalf("pulls reported %+v, want one at 312 of 1024 MiB", pulls)
	}
	close(g.open)
	waitUntil(t, func() bool { done, _ := c.pulling["a"].finished(); return done })
	_ = c.converge(ctx)
	if len(rt.pulled) != 1 || len(rt.runs) != 2 {
		t.Fatalf("pulls %v and runs %d: want one pull and both containers started", rt.pulled, len(rt.runs))
	}
	if r := reportByID(t, c); r["a"].Status != api.ContainerRunning || r["b"].Status != api.ContainerRunning {
		t.Fatalf("after the pull: %+v", r)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAFailedPullFailsItsContainersWithTheRegistrysReason(t *testing.T) {
	rt := newFakeRuntime()
	g := newGate()
	g.err = errors.New("registry lab (127.0.0.1:5000) refused 127.0.0.1:5000/lab/x:1: 401 Unauthorized")
	rt.pull = g.pull
	c := pullingConverger(rt, time.Minute)
	c.setDesired([]api.DesiredContainer{desired("a", "127.0.0.1:5000/lab/x:1")})
	_ = c.converge(context.Background())
	close(g.open)
	waitUntil(t, func() bool { done, _ := c.pulling["a"].finished(); return done })
	_ = c.converge(context.Background())
	r := reportByID(t, c)["a"]
	if r.Status != api.ContainerFailed || r.Reason != "image-pull-failed: "+g.err.Error() {
		t.Fatalf("report %+v", r)
	}
	// The failure goes out once with the next heartbeat, then no more.
	if pulls := c.pulls.report(); len(pulls) != 1 || !strings.Contains(pulls[0].Error, "401") {
		t.Fatalf("pulls %+v", pulls)
	}
	if pulls := c.pulls.report(); len(pulls) != 0 {
		t.Fatalf("reported again: %+v", pulls)
	}
	if len(rt.runs) != 0 {
		t.Fatal("a container started without its image")
	}
}

func TestAPullWithoutProgressIsGivenUp(t *testing.T) {
	rt := newFakeRuntime()
	rt.pull = func(ctx context.Context, _ runtime.PullRequest) error {
		<-ctx.Done() // a registry that accepted the connection and sends nothing
		return ctx.Err()
	}
	c := pullingConverger(rt, 300*time.Millisecond)
	c.setDesired([]api.DesiredContainer{desired("a", "stuck:1")})
	_ = c.converge(context.Background())
	waitUntil(t, func() bool { done, _ := c.pulling["a"].finished(); return done })
	_ = c.converge(context.Background())
	if r := reportByID(t, c)["a"]; r.Status != api.ContainerFailed || !strings.Contains(r.Reason, "no progress for 300ms") {
		t.Fatalf("report %+v", r)
	}
}

func TestAContainerAbandonedWhileItsImageIsPulledIsForgotten(t *testing.T) {
	rt := newFakeRuntime()
	g := newGate()
	rt.pull = g.pull
	c := pullingConverger(rt, time.Minute)
	c.setDesired([]api.DesiredContainer{desired("a", "big:1")})
	_ = c.converge(context.Background())
	c.setDesired(nil) // its session was terminated
	if _, ok := reportByID(t, c)["a"]; ok {
		t.Fatal("a container no longer wanted is still reported")
	}
	close(g.open)
	c.pulls.wait()
}

func TestProgressReadsInMiB(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		want        string
	}{
		{312 << 20, 1024 << 20, "312/1,024 MiB"},
		{0, 1 << 20, "0.0/1.0 MiB"},
		{3 << 19, 5 << 20, "1.5/5.0 MiB"},
		{12345 << 20, 1234567 << 20, "12,345/1,234,567 MiB"},
	} {
		if got := mibPair(c.done, c.total); got != c.want {
			t.Errorf("mibPair(%d, %d) = %q, want %q", c.done, c.total, got, c.want)
		}
	}
}

func TestImageGCRemovesUnusedImagesLeastRecentlyUsedFirstDownToTheLowMark(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0) }
	rt := newFakeRuntime("old", "newer", "oldest", "running", "wanted", "never")
	rt.used = map[string]time.Time{"old": at(20), "newer": at(30), "oldest": at(10), "running": at(1), "wanted": at(1), "never": {}}
	rt.containers["c1"] = runtime.Container{ID: "c1", Image: "running", State: runtime.Running}
	rt.disk = runtime.DiskUsage{Path: "/fake", UsedBytes: 90, TotalBytes: 100}
	rt.imageBytes = 8
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := newImageGC(rt, log, 85, 70, func() []string { return []string{"wanted"} }, func(string) bool { return false }, nil)
	removed, err := g.collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 90 → 82 → 74 → 66: never used, then the oldest, then old; "running"
	// and "wanted" stay whatever their age.
	if strings.Join(removed, ",") != "never,oldest,old" {
		t.Fatalf("removed %v", removed)
	}
	// Under the high mark nothing goes.
	rt.disk.UsedBytes = 84
	if removed, _ := g.collect(context.Background()); len(removed) != 0 {
		t.Fatalf("removed %v under the high mark", removed)
	}
	// A pull of an image keeps it too.
	rt.disk.UsedBytes = 99
	g.pulling = func(n string) bool { return n == "newer" }
	if removed, _ := g.collect(context.Background()); len(removed) != 0 {
		t.Fatalf("removed %v: every image left is in use, wanted or pulled", removed)
	}
}

// The agent's image API is the managers': a caller without the agent's
// secret can neither make it pull (fill its disk, fetch from a registry of
// its choosing) nor remove an image.
func TestAStrangerCannotMakeTheAgentPullOrRemoveImages(t *testing.T) {
	rt := newFakeRuntime("berth/base:latest")
	rt.pull = func(context.Context, runtime.PullRequest) error { return nil }
	mgr := newFakeManager()
	a, _ := startAgent(t, t.TempDir(), rt, mgr)
	eventually(t, 5*time.Second, func() error {
		if a.ID() == "" {
			return errors.New("not registered")
		}
		return nil
	})
	call := func(secret, method, path, body string) int {
		req, err := http.NewRequest(method, "http://"+a.Addr()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, secret := range []string{"", "not-the-secret"} {
		if got := call(secret, http.MethodPost, "/v1/images/pull", `{"image":"evil.example/miner:1"}`); got != http.StatusUnauthorized {
			t.Fatalf("pull with secret %q: %d", secret, got)
		}
		if got := call(secret, http.MethodDelete, "/v1/images/berth/base:latest", ""); got != http.StatusUnauthorized {
			t.Fatalf("remove with secret %q: %d", secret, got)
		}
	}
	rt.mu.Lock()
	pulled, images := len(rt.pulled), rt.images["berth/base:latest"]
	rt.mu.Unlock()
	if pulled != 0 || !images {
		t.Fatalf("a stranger's calls changed the images: pulled %d, base there %v", pulled, images)
	}
	// The control: with the secret, both work.
	secret := a.credentials().Secret
	if got := call(secret, http.MethodPost, "/v1/images/pull", `{"image":"lab/x:1"}`); got != http.StatusAccepted {
		t.Fatalf("pull with the secret: %d", got)
	}
	if got := call(secret, http.MethodDelete, "/v1/images/berth/base:latest", ""); got != http.StatusNoContent {
		t.Fatalf("remove with the secret: %d", got)
	}
	if got := call(secret, http.MethodDelete, "/v1/images/berth/base:latest", ""); got != http.StatusNotFound {
		t.Fatalf("remove again: %d", got)
	}
	if got := call(secret, http.MethodPost, "/v1/images/pull", `{"image":"Not A Ref"}`); got != http.StatusBadRequest {
		t.Fatalf("pull of a bad reference: %d", got)
	}
}
