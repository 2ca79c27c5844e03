package httpapi_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

var sessionIDPattern = regexp.MustCompile(`^s-[a-z0-9]{12}$`)

// The static checks of POST /v1/sessions: every problem at once, 400 for a
// malformed request, 422 for one that can never run, with the numbers.
// The agent has 1.5 cores and 2 GiB; the policy allows 2 cores and 4 GiB.
func TestSessionCreateIsCheckedStatically(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":1.5,"mem":2147483648}`, `{"cpu":2,"mem":4294967296}`)
	user := createUser(t, e.s, e.admin, "ursula@example.com", "ursula", api.RoleUser)
	token := testcluster.Login(t, e.s, user.User.Email, testPassword)
	res := func(cpu, mem any) map[string]any { return map[string]any{"cpu": cpu, "mem": mem} }
	tests := []struct {
		name   string
		body   any
		status int
		fields map[string][]string
	}{
		{name: "empty request: every missing field at once", body: map[string]any{}, status: 400, fields: map[string][]string{
			"image":     {"image is required: the name of an image the agents have, e.g. berth/base:latest"},
			"type":      {"type must be interactive or batch"},
			"resources": {"resources is required: at least cpu (cores) and mem (bytes) per container"},
		}},
		{name: "bad values of every kind", status: 400, body: map[string]any{
			"name": strings.Repeat("n", 65), "image": baseImage, "type": "batch", "resources": res(0, "1G"),
			"cluster_size": 0, "env": map[string]string{"1BAD": "x", "GOOD": "y"}, "mounts": []string{"data"},
		}, fields: map[string][]string{
			"name":          {"name must be at most 64 characters"},
			"command":       {"a batch session needs a command to run"},
			"resources.cpu": {"resources.cpu must be more than 0"},
			"resources.mem": {"resources.mem must be a number"},
			"cluster_size":  {"cluster_size must be a whole number of containers, at least 1"},
			"env":           {`env name "1BAD" must be letters, digits and _, not starting with a digit`},
			"mounts":        {"no folder data that you can see; list yours with GET /v1/folders"},
		}},
		{name: "slot values out of their grain", status: 400, body: map[string]any{
			"image": baseImage, "type": "interactive", "resources": map[string]any{"cpu": 0.0001, "mem": -1, "gpu": 1},
		}, fields: map[string][]string{
			"resources.cpu": {"cpu has more precision than 0.001 core allows"},
			"resources.mem": {"mem must not be negative"},
			"resources.gpu": {`unknown slot "gpu" (known: cpu, mem, cuda.device, cuda.shares)`},
		}},
		{name: "whole and fractional GPUs together", status: 400, body: map[string]any{
			"image": baseImage, "type": "interactive", "resources": map[string]any{"cpu": 1, "mem": 1 << 30, "cuda.device": 1, "cuda.shares": 0.5},
		}, fields: map[string][]string{
			"resources":             {"ask for cuda.device (whole GPUs) or cuda.shares (fractions), not both"},
			"resources.cuda.device": {"no agent has cuda.device 1 (largest 0)"},
			"resources.cuda.shares": {"no agent has cuda.shares 0.5 (largest 0)"},
		}},
		{name: "over the policy: the manual's 3 cores of 2", status: 422, body: oneCPU(map[string]any{"resources": res(3, 1<<30)}),
			fields: map[string][]string{
				"resources.cpu": {"cpu 3 > 2 allowed by policy default", "no agent has cpu 3 (largest 1.5)"},
			}},
		{name: "over the policy in all: two containers of 1.5 cores", status: 422,
			body:   oneCPU(map[string]any{"resources": res(1.5, 1<<30), "cluster_size": 2}),
			fields: map[string][]string{"resources.cpu": {"cpu 3 > 2 allowed by policy default"}}},
		{name: "more containers than the policy allows", status: 422, body: oneCPU(map[string]any{"resources": res(0.5, 1<<20), "cluster_size": 3}),
			fields: map[string][]string{"cluster_size": {"cluster_size 3 > 2 containers per session allowed by policy default"}}},
		{name: "within the policy, over every agent", status: 422, body: oneCPU(map[string]any{"resources": res(2, 3<<30)}),
			fields: map[string][]string{
				"resources.cpu": {"no agent has cpu 2 (largest 1.5)"},
				"resources.mem": {"no agent has mem 3221225472 (largest 2147483648)"},
			}},
		{name: "a reference that does not parse", status: 400, body: oneCPU(map[string]any{"image": "Ghost:1"}),
			fields: map[string][]string{"image": {"image reference \"Ghost:1\" does not parse (invalid reference format: repository name (library/Ghost) must be lowercase); write it as [HOST[:PORT]/]NAME[:TAG|@sha256:DIGEST], e.g. registry.example.com:5000/lab/python:3.12"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := api.ProblemValidation
			p := wantProblem(t, e.create(token, tt.body), tt.status, typ)
			wantFields(t, p, tt.fields)
		})
	}
	t.Run("a single reason is the detail", func(t *testing.T) {
		p := wantProblem(t, e.create(token, oneCPU(map[string]any{"resources": res(0.5, 1<<20), "cluster_size": 3})), 422, api.ProblemValidation)
		wantDetail(t, p, "the session can never run: cluster_size 3 > 2 containers per session allowed by policy default")
	})
	t.Run("unknown fields are refused", func(t *testing.T) {
		p := wantProblem(t, e.create(token, oneCPU(map[string]any{"gpus": 1})), 400, api.ProblemValidation)
		wantFields(t, p, map[string][]string{"gpus": {`unknown field "gpus"`}})
	})
	t.Run("nothing was created", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions?all=true"), e.admin, nil)
		var l api.List[api.Session]
		r.JSON(t, &l)
		if len(l.Items) != 0 {
			t.Fatalf("refused requests left sessions: %+v", l.Items)
		}
	})
}

// A session is created PENDING with the caller's keypair, seen by its
// owner and admins only, listed and exported, and cancelled by DELETE.
func TestSessionCreateListGetTerminateAndExport(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":2,"mem":4294967296}`)
	ann := createUser(t, e.s, e.admin, "ann@example.com", "ann", api.RoleUser)
	bob := createUser(t, e.s, e.admin, "bob@example.com", "bob", api.RoleUser)
	annToken := testcluster.Login(t, e.s, ann.User.Email, testPassword)
	bobToken := testcluster.Login(t, e.s, bob.User.Email, testPassword)

	s := e.mustCreate(annToken, oneCPU(map[string]any{"name": "=notebook", "env": map[string]string{"A": "1"}}))
	if !sessionIDPattern.MatchString(s.ID) || s.Status != api.SessionPending || s.Owner != ann.User.Email ||
		s.AccessKey != ann.Keypair.AccessKey || s.Image != baseImage || s.Type != api.SessionInteractive ||
		cpuOf(s.Requested) != "1" || len(s.Containers) != 0 || s.Containers == nil || s.CreatedAt.IsZero() ||
		len(s.StatusHistory) != 1 || s.StatusHistory[0].Status != api.SessionPending {
		t.Fatalf("created %+v", s)
	}
	if s.Occupied == nil || cpuOf(s.Occupied) != "0" {
		t.Errorf("a PENDING session occupies %v, want nothing", s.Occupied)
	}
	// The scheduler places it on the only agent, which (a fake) never
	// reports: it stays SCHEDULED.
	s = e.waitStatus(s.ID, api.SessionScheduled)
	if cpuOf(s.Occupied) != "1" || len(s.Containers) != 1 || s.Containers[0].Agent != e.agent.ID {
		t.Fatalf("scheduled %+v", s)
	}
	t.Run("a signed request uses its own keypair, not the oldest", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodPost, e.url("/v1/keypairs"), e.admin, map[string]any{"user": ann.User.Email})
		wantStatus(t, r, http.StatusCreated)
		var second api.Keypair
		r.JSON(t, &second)
		body := mustJSON(t, oneCPU(nil))
		r = send(t, signedRequest(t, http.MethodPost, e.url("/v1/sessions"), second, body, time.Now()))
		wantStatus(t, r, http.StatusCreated)
		var got api.Session
		r.JSON(t, &got)
		if got.AccessKey != second.AccessKey || got.Owner != ann.User.Email {
			t.Fatalf("signed create: access key %s owner %s, want %s of %s", got.AccessKey, got.Owner, second.AccessKey, ann.User.Email)
		}
		r = testcluster.Do(t, http.MethodDelete, e.url("/v1/sessions/"+got.ID), annToken, nil)
		wantStatus(t, r, http.StatusAccepted)
		e.beat() // placed or not, nothing of it runs: it ends
		testcluster.Eventually(t, 15*time.Second, func() error {
			if st := e.get(annToken, got.ID).Status; st != api.SessionTerminated && st != api.SessionCancelled {
				return fmt.Errorf("terminated session is %s", st)
			}
			return nil
		})
	})

	t.Run("owner and admin see it, another user does not", func(t *testing.T) {
		if got := e.get(annToken, s.ID); got.ID != s.ID {
			t.Fatalf("owner got %+v", got)
		}
		e.get(e.admin, s.ID)
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions/"+s.ID), bobToken, nil)
		wantProblem(t, r, http.StatusNotFound, api.ProblemNotFound)
		r = testcluster.Do(t, http.MethodDelete, e.url("/v1/sessions/"+s.ID), bobToken, nil)
		wantProblem(t, r, http.StatusNotFound, api.ProblemNotFound)
	})
	t.Run("lists: own by default, all or one owner for admins", func(t *testing.T) {
		list := func(token, query string) []string {
			r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions"+query), token, nil)
			wantStatus(t, r, http.StatusOK)
			var l api.List[api.Session]
			r.JSON(t, &l)
			var ids []string
			for _, it := range l.Items {
				ids = append(ids, it.ID)
			}
			return ids
		}
		if got := list(annToken, "?status=SCHEDULED"); !slices.Equal(got, []string{s.ID}) {
			t.Errorf("ann lists %v", got)
		}
		if got := list(bobToken, ""); len(got) != 0 {
			t.Errorf("bob lists %v", got)
		}
		if got := list(e.admin, ""); len(got) != 0 {
			t.Errorf("admin's own list %v, want empty", got)
		}
		if got := list(e.admin, "?all=true&status=scheduled"); !slices.Equal(got, []string{s.ID}) {
			t.Errorf("admin all=true lists %v", got)
		}
		if got := list(e.admin, "?owner=ann@example.com&status=SCHEDULED"); !slices.Equal(got, []string{s.ID}) {
			t.Errorf("admin owner=ann lists %v", got)
		}
		if got := list(e.admin, "?all=true&status=RUNNING"); len(got) != 0 {
			t.Errorf("status filter lists %v", got)
		}
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions?all=true"), bobToken, nil)
		wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)
		r = testcluster.Do(t, http.MethodGet, e.url("/v1/sessions?status=DONE"), annToken, nil)
		wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
	})
	t.Run("CSV: admins every session, users their own, exact columns", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/export/sessions.csv?filename=mine&status=SCHEDULED"), e.admin, nil)
		wantStatus(t, r, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if cd := r.Header.Get("Content-Disposition"); cd != `attachment; filename=mine.csv` {
			t.Errorf("Content-Disposition %q", cd)
		}
		rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"id", "name", "owner", "access_key", "image", "type", "status", "status_info", "agents", "cpu", "mem",
				"cuda.device", "cuda.shares", "created_at", "started_at", "terminated_at", "exit_code"},
			{s.ID, "'=notebook", ann.User.Email, ann.Keypair.AccessKey, baseImage, "interactive", "SCHEDULED", s.StatusInfo, e.agent.ID,
				"1", "1073741824", "0", "0", s.CreatedAt.UTC().Format("2006-01-02T15:04:05Z07:00"), "", "", ""},
		}
		if !slices.EqualFunc(rows, want, slices.Equal) {
			t.Fatalf("CSV rows\n%q\nwant\n%q", rows, want)
		}
		r = testcluster.Do(t, http.MethodGet, e.url("/v1/export/sessions.csv"), bobToken, nil)
		wantStatus(t, r, http.StatusOK)
		if n := strings.Count(string(r.Body), "\r\n"); n != 1 {
			t.Fatalf("bob's export has %d lines, want the header only:\n%s", n, r.Body)
		}
	})
	t.Run("DELETE of a waiting session cancels it; again is harmless", func(t *testing.T) {
		// 1 core is held, 1.5 more would pass the policy's 2.
		waiting := e.mustCreate(annToken, oneCPU(map[string]any{"resources": map[string]any{"cpu": 1.5, "mem": 1 << 30}}))
		testcluster.Eventually(t, 15*time.Second, func() error {
			if got := e.get(annToken, waiting.ID); got.Status != api.SessionPending || !strings.Contains(got.StatusInfo, "cpu") {
				return fmt.Errorf("waiting session is %s (%s), want PENDING naming cpu", got.Status, got.StatusInfo)
			}
			return nil
		})
		for i := 0; i < 2; i++ {
			got := e.terminate(t, annToken, waiting.ID)
			if got.Status != api.SessionCancelled || got.TerminatedAt == nil {
				t.Fatalf("after DELETE %d: %+v", i+1, got)
			}
			last := got.StatusHistory[len(got.StatusHistory)-1]
			if last.Status != api.SessionCancelled || last.Reason != "user-request" {
				t.Fatalf("history %+v", got.StatusHistory)
			}
		}
	})
	t.Run("DELETE of a placed session: TERMINATING until its agent lists nothing of it", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			if got := e.terminate(t, annToken, s.ID); got.Status != api.SessionTerminating || got.TerminatedAt != nil {
				t.Fatalf("after DELETE %d: %+v", i+1, got)
			}
		}
		e.beat()
		got := e.waitStatus(s.ID, api.SessionTerminated)
		if last := got.StatusHistory[len(got.StatusHistory)-1]; last.Reason != "user-request" || got.TerminatedAt == nil {
			t.Fatalf("terminated %+v", got)
		}
	})
}

// TestSessionViewNamesTheEnvironmentNeverItsValues: the session shows its
// command, cluster size and the names of its environment variables, but
// not their values (tokens are often passed this way).
func TestSessionViewNamesTheEnvironmentNeverItsValues(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "127.0.0.1:1", `{"cpu":8,"mem":17179869184}`, `{"cpu":null}`)
	s := e.mustCreate(e.admin, oneCPU(map[string]any{"type": "batch", "command": []string{"sh", "-c", "echo hi; exit 3"},
		"env": map[string]string{"TOKEN": "s3cret-value", "A_FIRST": "1"}}))
	r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions/"+s.ID), e.admin, nil)
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.Body), "s3cret-value") {
		t.Fatalf("the session view shows an environment value: %s", r.Body)
	}
	var got api.Session
	r.JSON(t, &got)
	if strings.Join(got.EnvNames, ",") != "A_FIRST,TOKEN" || strings.Join(got.Command, "|") != "sh|-c|echo hi; exit 3" || got.ClusterSize != 1 {
		t.Fatalf("env_names %v, command %q, cluster_size %d", got.EnvNames, got.Command, got.ClusterSize)
	}
}
