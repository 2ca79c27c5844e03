package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// A pulling container moves its session to PREPARING with the pull's words
// as status_info, which follow the agent's reports; once it runs, the
// session records the image digest and the progress is gone.
func TestAPullsProgressIsTheSessionsStatusInfo(t *testing.T) {
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	s := e.mustCreate(e.admin, oneCPU(nil))
	e.place(s.ID, 1)
	pulling := func(words string) api.ContainerReport {
		return api.ContainerReport{ID: s.ID + "-0", SessionID: s.ID, Index: 0, Status: "pulling", Reason: words}
	}
	e.beat(pulling("pulling berth/base:latest: 1.0/5.0 MiB"))
	got := e.waitStatus(s.ID, api.SessionPreparing)
	if got.StatusInfo != "pulling berth/base:latest: 1.0/5.0 MiB" {
		t.Fatalf("status_info %q", got.StatusInfo)
	}
	e.beat(pulling("pulling berth/base:latest: 4.0/5.0 MiB"))
	testcluster.Eventually(t, 10*time.Second, func() error {
		if got = e.get(e.admin, s.ID); got.StatusInfo != "pulling berth/base:latest: 4.0/5.0 MiB" {
			return fmt.Errorf("status_info %q", got.StatusInfo)
		}
		return nil
	})
	r := running(s.ID, 0, 0)
	r.ImageDigest = "sha256:" + strings.Repeat("ab", 32)
	e.beat(r)
	got = e.waitStatus(s.ID, api.SessionRunning)
	if got.StatusInfo != "" || got.ImageDigest != r.ImageDigest || got.Containers[0].ImageDigest != r.ImageDigest {
		t.Fatalf("running session %+v", got)
	}
	var hist []string
	for _, h := range got.StatusHistory {
		hist = append(hist, string(h.Status))
	}
	if strings.Join(hist, ",") != "PENDING,SCHEDULED,PREPARING,RUNNING" || got.StatusHistory[2].Reason != "pulling image berth/base:latest" {
		t.Fatalf("history %+v", got.StatusHistory)
	}
}

func TestImagePullsAndRemovalsAreForAdminsAndCheckedFirst(t *testing.T) {
	e := newSessionEnv(t, "127.0.0.1:1", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	createUser(t, e.s, e.admin, "user@example.com", "user", api.RoleUser)
	user := testcluster.Login(t, e.s, "user@example.com", testPassword)
	do := func(token, method, path string, body any) *testcluster.Response {
		return testcluster.Do(t, method, e.url(path), token, body)
	}
	// Attack: a user makes every agent pull (fill their disks) or removes
	// an image others run.
	wantProblem(t, do(user, http.MethodPost, "/v1/images/pull", map[string]any{"image": "evil.example/miner:1"}), http.StatusForbidden, api.ProblemForbidden)
	wantProblem(t, do(user, http.MethodDelete, "/v1/images/berth/base:latest?agent="+e.agent.ID, nil), http.StatusForbidden, api.ProblemForbidden)

	for _, c := range []struct {
		name, method, path string
		body               any
		status             int
		says               string
	}{
		{"a reference that does not parse", http.MethodPost, "/v1/images/pull", map[string]any{"image": "Not A Ref"}, 400, "does not parse"},
		{"an unknown agent", http.MethodPost, "/v1/images/pull", map[string]any{"image": "x:1", "agents": []string{"nope"}}, 422, "no agent nope"},
		{"an agent named twice", http.MethodPost, "/v1/images/pull", map[string]any{"image": "x:1", "agents": []string{e.agent.ID, e.agent.ID}}, 422, "named twice"},
		// A registry that does not answer is no refusal: the agents may
		// reach it. This one's agent does not answer either.
		{"a registry that is not there", http.MethodPost, "/v1/images/pull", map[string]any{"image": "127.0.0.1:1/x:1"}, 503, "no agent took the pull"},
		{"removal without an agent", http.MethodDelete, "/v1/images/berth/base:latest", nil, 400, "agent is required"},
		{"removal from an unknown agent", http.MethodDelete, "/v1/images/berth/base:latest?agent=nope", nil, 404, "no agent nope"},
		{"removal of a bad reference", http.MethodDelete, "/v1/images/Bad%20Ref?agent=" + e.agent.ID, nil, 400, "does not parse"},
		// The fake agent's address answers nothing: the caller is told.
		{"an agent that does not answer", http.MethodDelete, "/v1/images/berth/base:latest?agent=" + e.agent.ID, nil, 503, "could not reach agent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(e.admin, c.method, c.path, c.body)
			wantStatus(t, r, c.status)
			if !strings.Contains(string(r.Body), c.says) {
				t.Fatalf("answer %s does not say %q", r.Body, c.says)
			}
		})
	}
}

// GET /v1/images shows the pulls under way to admins (from the agents'
// heartbeats), and with ?allowed=true only what the caller's policy
// allows.
func TestTheImageListShowsPullsAndWhatAPolicyAllows(t *testing.T) {
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	hb := e.capacity
	hb.Containers = []api.ContainerReport{}
	hb.Images = []api.Image{{Name: "berth/base:latest", Digest: "sha256:aa", Size: 1 << 20}, {Name: "127.0.0.1:5000/lab/py:3", Digest: "sha256:bb", Size: 5 << 20}}
	hb.Pulls = []api.ImagePull{{Image: "127.0.0.1:5000/lab/big:1", DoneBytes: 10, TotalBytes: 100}, {Image: "x:1", Error: "failed"}}
	heartbeat(t, e.s, e.agent, hb)

	createUser(t, e.s, e.admin, "user@example.com", "user", api.RoleUser)
	user := testcluster.Login(t, e.s, "user@example.com", testPassword)
	list := func(token, query string) []api.ClusterImage {
		var l api.List[api.ClusterImage]
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/images"+query), token, nil)
		wantStatus(t, r, http.StatusOK)
		r.JSON(t, &l)
		return l.Items
	}
	names := func(items []api.ClusterImage) string {
		var out []string
		for _, im := range items {
			out = append(out, im.Name)
		}
		return strings.Join(out, ",")
	}
	admin := list(e.admin, "")
	if names(admin) != "127.0.0.1:5000/lab/big:1,127.0.0.1:5000/lab/py:3,berth/base:latest" {
		t.Fatalf("admin sees %s", names(admin))
	}
	if p := admin[0].Pulling; len(p) != 1 || p[0].Agent != e.agent.ID || p[0].DoneBytes != 10 || p[0].TotalBytes != 100 {
		t.Fatalf("pulls %+v", p)
	}
	// A user sees the names, not the agents or the pulls.
	for _, im := range list(user, "") {
		if len(im.Agents) != 0 || len(im.Pulling) != 0 {
			t.Fatalf("a user sees %+v", im)
		}
	}
	wantStatus(t, testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/default"), e.admin,
		map[string]any{"allowed_images": []string{"127.0.0.1:5000/lab/*"}}), http.StatusOK)
	// (A user is not shown pulls: lab/big:1 is on no agent yet.)
	if got := names(list(user, "?allowed=true")); got != "127.0.0.1:5000/lab/py:3" {
		t.Fatalf("allowed images %s", got)
	}
	wantStatus(t, testcluster.Do(t, http.MethodGet, e.url("/v1/images?allowed=maybe"), user, nil), http.StatusBadRequest)
}

func TestASessionsImageMustMatchItsPolicysAllowedImages(t *testing.T) {
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	patch := func(body any) *testcluster.Response {
		return testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/default"), e.admin, body)
	}
	p := wantProblem(t, patch(map[string]any{"allowed_images": []any{"", "a b", "ok/*", "ok/*"}}), http.StatusBadRequest, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"allowed_images": {"an image pattern must not be empty", `image pattern "a b" must not contain spaces`, "pattern ok/* is listed twice"}})
	wantProblem(t, patch(map[string]any{"allowed_images": "ok/*"}), http.StatusBadRequest, api.ProblemValidation)

	wantStatus(t, patch(map[string]any{"allowed_images": []string{"registry.example.com/lab/*"}}), http.StatusOK)
	// The base image is on the agent, and not allowed.
	p = wantProblem(t, e.create(e.admin, oneCPU(nil)), http.StatusUnprocessableEntity, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"image": {"image berth/base:latest (docker.io/berth/base:latest) is not allowed by resource policy default, which allows only registry.example.com/lab/*; pick an image that matches, or ask an administrator to add it to allowed_images"}})
	// Its full form allowed, it runs.
	wantStatus(t, patch(map[string]any{"allowed_images": []string{"docker.io/berth/*"}}), http.StatusOK)
	e.mustCreate(e.admin, oneCPU(nil))
	// Empty again: any image.
	wantStatus(t, patch(map[string]any{"allowed_images": nil}), http.StatusOK)
	var pol api.ResourcePolicy
	testcluster.Do(t, http.MethodGet, e.url("/v1/resource-policies/default"), e.admin, nil).JSON(t, &pol)
	if pol.AllowedImages == nil || len(pol.AllowedImages) != 0 {
		t.Fatalf("allowed_images %v", pol.AllowedImages)
	}
}

// The create handler refuses an image nobody has only on the registry's
// word (no such image, not authorised, too large); a registry it cannot
// reach is no answer: the session waits, and its pull says what happened.
func TestAnImageWhoseRegistryDoesNotAnswerIsNotRefusedAtCreate(t *testing.T) {
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	s := e.mustCreate(e.admin, oneCPU(map[string]any{"image": "127.0.0.1:1/ghost:1"}))
	if s.Status != api.SessionPending {
		t.Fatalf("session %s", s.Status)
	}
}
