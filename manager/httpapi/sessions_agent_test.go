package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// fakeAgentAPI stands in for an agent's own API (exec, logs): it records
// what the manager sent and answers as told.
type fakeAgentAPI struct {
	*httptest.Server
	mu       sync.Mutex
	calls    []agentAPICall
	execCode int // status of the exec answer
}

type agentAPICall struct {
	method, path, auth string
	body               []byte
}

func newFakeAgentAPI(t *testing.T) *fakeAgentAPI {
	f := &fakeAgentAPI{execCode: http.StatusOK}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.calls = append(f.calls, agentAPICall{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body})
		code := f.execCode
		f.mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/exec") && code != http.StatusOK:
			w.Header().Set("Content-Type", api.ProblemContentType)
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(api.Problem{Title: "boom", Status: code, Detail: "the container runtime failed: boom"})
		case strings.HasSuffix(r.URL.Path, "/exec"):
			var req api.ExecRequest
			_ = json.Unmarshal(body, &req)
			_ = json.NewEncoder(w).Encode(api.ExecResult{ExitCode: 7, Stdout: strings.Join(req.Command, " ") + "\n", Stderr: "warn\n"})
		case strings.HasSuffix(r.URL.Path, "/logs"):
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "line 1\nline 2\n")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAgentAPI) addr() string { return strings.TrimPrefix(f.URL, "http://") }

func (f *fakeAgentAPI) last(t *testing.T) agentAPICall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("the agent API was not called")
	}
	return f.calls[len(f.calls)-1]
}

func withIdleEvery(d time.Duration) func(*server.Config) {
	return func(cfg *server.Config) { cfg.IdleCheckEvery = d }
}

// A session placed on an agent is in its desired containers; the agent's
// reports move it to RUNNING; exec and logs go to that agent with its
// secret and count as activity; DELETE puts its container in the stop list
// and the agent's report that it is gone ends it.
func TestSessionThroughItsAgent(t *testing.T) {
	t.Parallel()
	fa := newFakeAgentAPI(t)
	e := newSessionEnv(t, fa.addr(), `{"cpu":4,"mem":8589934592}`, `{"cpu":2,"mem":4294967296}`, withIdleEvery(100*time.Millisecond))
	ann := createUser(t, e.s, e.admin, "ann@example.com", "ann", api.RoleUser)
	bob := createUser(t, e.s, e.admin, "bob@example.com", "bob", api.RoleUser)
	annToken := testcluster.Login(t, e.s, ann.User.Email, testPassword)
	bobToken := testcluster.Login(t, e.s, bob.User.Email, testPassword)
	s := e.mustCreate(annToken, oneCPU(map[string]any{"env": map[string]string{"GREETING": "hi"}}))
	exec := func(token string, body any) *testcluster.Response {
		return testcluster.Do(t, http.MethodPost, e.url("/v1/sessions/"+s.ID+"/exec"), token, body)
	}

	p := wantProblem(t, exec(annToken, map[string]any{"command": []string{"true"}}), http.StatusConflict, api.ProblemConflict)
	wantDetail(t, p, "exec needs a RUNNING session") // PENDING or SCHEDULED by now

	e.place(s.ID, 1)
	t.Run("the placed container is desired, with the session's command, env and slots", func(t *testing.T) {
		ds := e.desired()
		if len(ds.Containers) != 1 || len(ds.Stop) != 0 {
			t.Fatalf("desired %+v", ds)
		}
		d := ds.Containers[0]
		if d.ID != s.ID+"-0" || d.SessionID != s.ID || d.Index != 0 || d.Image != baseImage || len(d.Command) == 0 ||
			d.Env["GREETING"] != "hi" || d.Env["BERTH_SESSION_ID"] != s.ID || cpuOf(d.Slots) != "1" {
			t.Fatalf("desired container %+v", d)
		}
	})
	e.beat(running(s.ID, 0, 0))
	got := e.waitStatus(s.ID, api.SessionRunning)
	if got.StartedAt == nil || len(got.Containers) != 1 || got.Containers[0].Agent != e.agent.ID ||
		got.Containers[0].Status != "running" || cpuOf(got.Occupied) != "1" || got.Containers[0].GPUs == nil {
		t.Fatalf("running session %+v", got)
	}

	t.Run("reports that change nothing write nothing", func(t *testing.T) {
		before := lastIndex(e.s)
		for i := 0; i < 3; i++ {
			e.beat(running(s.ID, 0, 0))
		}
		if after := lastIndex(e.s); after != before {
			t.Fatalf("steady heartbeats wrote to Raft: index %d → %d", before, after)
		}
	})
	t.Run("exec goes to the agent with its secret", func(t *testing.T) {
		r := exec(annToken, map[string]any{"command": []string{"echo", "hi"}, "timeout_s": 5})
		wantStatus(t, r, http.StatusOK)
		var res api.ExecResult
		r.JSON(t, &res)
		if res != (api.ExecResult{ExitCode: 7, Stdout: "echo hi\n", Stderr: "warn\n"}) {
			t.Fatalf("exec result %+v", res)
		}
		call := fa.last(t)
		if call.method != http.MethodPost || call.path != "/v1/containers/"+s.ID+"-0/exec" || call.auth != "Bearer "+e.agent.Secret ||
			string(call.body) != `{"command":["echo","hi"],"timeout_s":5}` {
			t.Fatalf("the agent got %s %s auth %q body %s", call.method, call.path, call.auth, call.body)
		}
	})
	t.Run("exec refuses bad requests and other users", func(t *testing.T) {
		p := wantProblem(t, exec(annToken, map[string]any{"command": []string{}, "timeout_s": 601}), http.StatusBadRequest, api.ProblemValidation)
		wantFields(t, p, map[string][]string{
			"command":   {`command must name the program to run, e.g. ["echo","hi"]`},
			"timeout_s": {"timeout_s must be from 0 (the agent's default, 30) to 600 seconds"},
		})
		wantProblem(t, exec(bobToken, map[string]any{"command": []string{"id"}}), http.StatusNotFound, api.ProblemNotFound)
	})
	t.Run("an agent failure is a 502 with its reason", func(t *testing.T) {
		fa.mu.Lock()
		fa.execCode = http.StatusInternalServerError
		fa.mu.Unlock()
		defer func() { fa.mu.Lock(); fa.execCode = http.StatusOK; fa.mu.Unlock() }()
		p := wantProblem(t, exec(annToken, map[string]any{"command": []string{"id"}}), http.StatusBadGateway, "https://berth.dev/problems/agent")
		wantDetail(t, p, "answered 500: the container runtime failed: boom")
	})
	t.Run("logs are the agent's text", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions/"+s.ID+"/logs"), annToken, nil)
		wantStatus(t, r, http.StatusOK)
		if string(r.Body) != "line 1\nline 2\n" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("logs %q (%s)", r.Body, r.Header.Get("Content-Type"))
		}
		if call := fa.last(t); call.method != http.MethodGet || call.path != "/v1/containers/"+s.ID+"-0/logs" {
			t.Fatalf("the agent got %s %s", call.method, call.path)
		}
	})
	t.Run("exec and logs are recorded as activity", func(t *testing.T) {
		testcluster.Eventually(t, 10*time.Second, func() error {
			if got := e.get(annToken, s.ID); got.LastActivityAt == nil {
				return fmt.Errorf("last_activity_at still unset")
			}
			return nil
		})
	})
	t.Run("DELETE: the container is to stop; gone from the report, the session is TERMINATED", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodDelete, e.url("/v1/sessions/"+s.ID), annToken, nil)
		wantStatus(t, r, http.StatusAccepted)
		var got api.Session
		r.JSON(t, &got)
		if got.Status != api.SessionTerminating {
			t.Fatalf("after DELETE: %s", got.Status)
		}
		ds := e.desired()
		if len(ds.Containers) != 0 || !slices.Equal(ds.Stop, []string{s.ID + "-0"}) {
			t.Fatalf("desired after DELETE %+v", ds)
		}
		e.beat(running(s.ID, 0, 0)) // still stopping: still TERMINATING
		if got := e.get(annToken, s.ID); got.Status != api.SessionTerminating {
			t.Fatalf("TERMINATING session moved to %s while its container runs", got.Status)
		}
		e.beat() // the agent removed it
		got = e.waitStatus(s.ID, api.SessionTerminated)
		if got.TerminatedAt == nil || cpuOf(got.Occupied) != "0" {
			t.Fatalf("terminated session %+v", got)
		}
		if ds := e.desired(); len(ds.Containers) != 0 || len(ds.Stop) != 0 {
			t.Fatalf("desired once all is gone %+v", ds)
		}
		p := wantProblem(t, exec(annToken, map[string]any{"command": []string{"true"}}), http.StatusConflict, api.ProblemConflict)
		wantDetail(t, p, "is TERMINATED")
	})
}

// A batch session ends TERMINATED with its command's exit code; its exited
// container is then in the stop list until the agent no longer reports it.
// A container that vanishes ends an interactive session in ERROR.
func TestBatchExitAndVanishedContainers(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":2,"mem":4294967296}`)
	user := createUser(t, e.s, e.admin, "ann@example.com", "ann", api.RoleUser)
	token := testcluster.Login(t, e.s, user.User.Email, testPassword)

	batch := e.mustCreate(token, oneCPU(map[string]any{"type": "batch", "command": []string{"sh", "-c", "exit 3"}}))
	lost := e.mustCreate(token, oneCPU(nil))
	e.place(batch.ID, 1)
	e.place(lost.ID, 1)
	e.beat(running(batch.ID, 0, 0), running(lost.ID, 0, 0))
	e.waitStatus(batch.ID, api.SessionRunning)
	e.waitStatus(lost.ID, api.SessionRunning)

	three := 3
	exited := api.ContainerReport{ID: batch.ID + "-0", SessionID: batch.ID, Index: 0, Status: "exited", ExitCode: &three}
	e.beat(exited, running(lost.ID, 0, 0))
	got := e.waitStatus(batch.ID, api.SessionTerminated)
	if got.ExitCode == nil || *got.ExitCode != 3 {
		t.Fatalf("batch session exit code %v, want 3", got.ExitCode)
	}
	if ds := e.desired(); !slices.Equal(ds.Stop, []string{batch.ID + "-0"}) {
		t.Fatalf("stop list %v, want the exited batch container", ds.Stop)
	}
	e.beat(running(lost.ID, 0, 0))
	if ds := e.desired(); len(ds.Stop) != 0 {
		t.Fatalf("stop list %v once the agent removed it", ds.Stop)
	}

	e.beat() // lost's container vanished
	got = e.waitStatus(lost.ID, api.SessionError)
	if got.StatusInfo != "container vanished" {
		t.Fatalf("vanished container: status_info %q", got.StatusInfo)
	}
}

// An agent that goes silent is LOST and its sessions ERROR (agent-lost);
// when it comes back still running their containers, it is told to stop
// them.
func TestALostAgentIsToldToStopWhatNoLongerRuns(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":2,"mem":4294967296}`,
		func(cfg *server.Config) { cfg.HeartbeatTimeout, cfg.DisconnectGrace = time.Second, time.Second })
	user := createUser(t, e.s, e.admin, "ann@example.com", "ann", api.RoleUser)
	token := testcluster.Login(t, e.s, user.User.Email, testPassword)
	s := e.mustCreate(token, oneCPU(nil))
	e.place(s.ID, 1)
	e.beat(running(s.ID, 0, 0))
	e.waitStatus(s.ID, api.SessionRunning)

	got := e.waitStatus(s.ID, api.SessionError) // no more heartbeats
	if !strings.HasPrefix(got.StatusInfo, "agent-lost: last heartbeat ") || cpuOf(got.Occupied) != "0" {
		t.Fatalf("session on the lost agent %+v", got)
	}
	e.beat(running(s.ID, 0, 1)) // back, and the container still runs
	testcluster.Eventually(t, 15*time.Second, func() error {
		if ds := e.desired(); len(ds.Containers) != 0 || !slices.Equal(ds.Stop, []string{s.ID + "-0"}) {
			return fmt.Errorf("desired of the returning agent %+v", ds)
		}
		return nil
	})
	if got := e.get(token, s.ID); got.Status != api.SessionError {
		t.Fatalf("the ended session came back as %s", got.Status)
	}
}
