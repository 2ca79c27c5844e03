package httpapi_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

const testAgentToken = "agents-welcome"

func withAgentToken(cfg *server.Config) { cfg.AgentToken = testAgentToken }

// agentCall sends an agent's request: the join token when joinToken is set,
// the secret as a bearer when secret is set.
func agentCall(t *testing.T, s *server.Server, method, path, joinToken, secret string, body any) *testcluster.Response {
	t.Helper()
	var raw []byte
	if body != nil {
		raw = mustJSON(t, body)
	}
	req := newRequest(t, method, testcluster.URL(s)+path, raw)
	if joinToken != "" {
		req.Header.Set(api.AgentTokenHeader, joinToken)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	return send(t, req)
}

// registration is what an agent of 7 cores and 15 GiB sends.
func registration(addr string, images ...api.Image) api.AgentRegister {
	if images == nil {
		images = []api.Image{}
	}
	return api.AgentRegister{Address: addr, Capacity: mustSlots(`{"cpu":7,"mem":16106127360}`), Images: images, Version: "0.5.0",
		Node: api.NodeInfo{Hostname: "node-a", Arch: "amd64", Kernel: "6.1.0", CPUs: 8, MemoryBytes: 16 << 30,
			ReservedCPU: "1", ReservedMemBytes: 1 << 30, ContainerdVersion: "1.7.24", CgroupVersion: 2}}
}

func register(t *testing.T, s *server.Server, in api.AgentRegister) api.AgentRegistered {
	t.Helper()
	r := agentCall(t, s, http.MethodPost, "/v1/agents/register", testAgentToken, "", in)
	wantStatus(t, r, http.StatusCreated)
	var out api.AgentRegistered
	r.JSON(t, &out)
	return out
}

func getAgent(t *testing.T, s *server.Server, token, id string) api.Agent {
	t.Helper()
	r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents/"+id, token, nil)
	wantStatus(t, r, http.StatusOK)
	var out api.Agent
	r.JSON(t, &out)
	return out
}

func heartbeat(t *testing.T, s *server.Server, ag api.AgentRegistered, hb api.AgentHeartbeat) api.HeartbeatAnswer {
	t.Helper()
	r := agentCall(t, s, http.MethodPost, "/v1/agents/"+ag.ID+"/heartbeat", "", ag.Secret, hb)
	wantStatus(t, r, http.StatusOK)
	var out api.HeartbeatAnswer
	r.JSON(t, &out)
	return out
}

// lastIndex is the index of the manager's last applied log entry: it
// moves with every write.
func lastIndex(s *server.Server) uint64 { return s.AppliedIndex() }

var agentIDPattern = regexp.MustCompile(`^agent-[a-z0-9]{12}$`)

// Without a shared -agent-token and without issued tokens, no token
// admits an agent (an empty shared token must not match an empty header).
func TestAgentRegistrationNeedsTheAgentToken(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t).Servers[0]
	for _, token := range []string{"anything", ""} {
		r := agentCall(t, s, http.MethodPost, "/v1/agents/register", token, "", registration("10.0.0.5:6001"))
		p := wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
		wantDetail(t, p, "wrong or missing agent token", "berth agent token create")
	}
}

func TestAgentRegistration(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t, withAgentToken).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	in := registration("10.0.0.5:6001", api.Image{Name: "berth/base:latest", Digest: "sha256:aa", Size: 1 << 20})

	for name, token := range map[string]string{"wrong token": "nope", "no token": ""} {
		t.Run(name, func(t *testing.T) {
			r := agentCall(t, s, http.MethodPost, "/v1/agents/register", token, "", in)
			wantDetail(t, wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized), api.AgentTokenHeader)
		})
	}

	ag := register(t, s, in)
	if !agentIDPattern.MatchString(ag.ID) || len(ag.Secret) != 40 {
		t.Fatalf("registered as %q with a secret of %d characters; want agent-[a-z0-9]{12} and 40", ag.ID, len(ag.Secret))
	}
	t.Run("the new agent is ALIVE and its view never shows the secret", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents/"+ag.ID, admin, nil)
		wantStatus(t, r, http.StatusOK)
		if strings.Contains(string(r.Body), ag.Secret) || strings.Contains(string(r.Body), `"secret"`) {
			t.Fatalf("the agent view leaks the secret: %s", r.Body)
		}
		var got api.Agent
		r.JSON(t, &got)
		if got.Status != api.AgentAlive || !got.Schedulable || got.Address != in.Address || got.Version != "0.5.0" ||
			got.Node != in.Node || len(got.Images) != 1 || got.GPUs == nil || got.LastHeartbeatAt.IsZero() {
			t.Errorf("agent view %+v", got)
		}
		wantJSON(t, "capacity", got.Capacity, `{"cpu":7,"mem":16106127360,"cuda.device":0,"cuda.shares":0}`)
		wantJSON(t, "occupied", got.Occupied, `{"cpu":0,"mem":0,"cuda.device":0,"cuda.shares":0}`)
	})

	t.Run("registering again with id and secret updates the record", func(t *testing.T) {
		again := registration("10.0.0.6:6001")
		again.ID = ag.ID
		again.Capacity = mustSlots(`{"cpu":3,"mem":1073741824}`)
		r := agentCall(t, s, http.MethodPost, "/v1/agents/register", testAgentToken, ag.Secret, again)
		wantStatus(t, r, http.StatusOK)
		var out map[string]any
		r.JSON(t, &out)
		wantJSON(t, "answer", out, `{"id":"`+ag.ID+`"}`)
		got := getAgent(t, s, admin, ag.ID)
		if got.Address != "10.0.0.6:6001" || got.Capacity.String() != "cpu=3 mem=1073741824" || len(got.Images) != 0 {
			t.Errorf("after registering again: address %s capacity %s images %v", got.Address, got.Capacity, got.Images)
		}
	})

	for name, c := range map[string]struct{ id, secret string }{
		"wrong secret": {ag.ID, strings.Repeat("x", 40)},
		"no secret":    {ag.ID, ""},
		"unknown id":   {"agent-000000000000", ag.Secret},
	} {
		t.Run("registering again: "+name, func(t *testing.T) {
			again := registration("10.0.0.5:6001")
			again.ID = c.id
			r := agentCall(t, s, http.MethodPost, "/v1/agents/register", testAgentToken, c.secret, again)
			wantDetail(t, wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized), "unknown agent id or wrong secret")
		})
	}

	t.Run("every problem of the body at once", func(t *testing.T) {
		r := agentCall(t, s, http.MethodPost, "/v1/agents/register", testAgentToken, "",
			map[string]any{"address": "no-port", "capacity": map[string]any{"cpu": -1, "gpu": 2, "cuda.shares": "1"}})
		wantFields(t, wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation), map[string][]string{
			"address":              {"address must be host:port where the managers reach the agent's API, e.g. 10.0.0.5:6001"},
			"capacity.mem":         {"capacity.mem is required"},
			"capacity.cpu":         {"cpu must not be negative"},
			"capacity.gpu":         {`unknown slot "gpu" (known: cpu, mem, cuda.device, cuda.shares)`},
			"capacity.cuda.shares": {"capacity.cuda.shares must be a number"},
		})
		r = agentCall(t, s, http.MethodPost, "/v1/agents/register", testAgentToken, "", map[string]any{"address": "10.0.0.5:6001"})
		wantFields(t, wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation), map[string][]string{
			"capacity": {"capacity is required: the agent's cpu and mem after the reserved share"},
		})
	})
}

// TestAgentHeartbeatsStayOffRaft drives the clock by hand: heartbeats that
// bring no news write nothing through Raft, yet the views show their time
// and usage; news, or 30 s without a write, is written.
func TestAgentHeartbeatsStayOffRaft(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := testcluster.StartFake(t, withAgentToken, withClock(clock, 24*time.Hour), func(cfg *server.Config) {
		cfg.HeartbeatTimeout = time.Hour // the fake clock jumps; nothing may be LOST here
	}).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	in := registration("10.0.0.5:6001", api.Image{Name: "berth/base:latest", Digest: "sha256:aa", Size: 1 << 20})
	ag := register(t, s, in)
	registeredAt := clock.Now()
	hb := api.AgentHeartbeat{Address: in.Address, Capacity: in.Capacity, Images: in.Images, Containers: []api.ContainerReport{
		{ID: "c1", SessionID: "s1", Status: "running", CPUSeconds: 1.5, MemoryWorkingSet: 100 << 20},
		{ID: "c2", SessionID: "s2", Status: "running", CPUSeconds: 2.25, MemoryWorkingSet: 28 << 20},
	}}

	before := lastIndex(s)
	for i := 0; i < 20; i++ {
		clock.Advance(time.Second)
		if got := heartbeat(t, s, ag, hb); got.Status != api.AgentAlive || got.DesiredIndex == 0 {
			t.Fatalf("heartbeat %d answered %+v", i, got)
		}
	}
	if after := lastIndex(s); after != before {
		t.Fatalf("20 heartbeats without news moved the Raft log from %d to %d", before, after)
	}
	got := getAgent(t, s, admin, ag.ID)
	if !got.LastHeartbeatAt.Equal(clock.Now()) {
		t.Errorf("last_heartbeat_at %s, want the last beat's %s", got.LastHeartbeatAt, clock.Now())
	}
	wantJSON(t, "used", got.Used, `{"cpu_seconds":3.75,"memory_working_set_bytes":134217728,"containers":2}`)
	rec, _ := s.State().Read().Agent(ag.ID)
	if !rec.LastHeartbeatAt.Equal(registeredAt) {
		t.Errorf("the replicated last_heartbeat_at moved to %s without a write", rec.LastHeartbeatAt)
	}

	t.Run("30 s after the last write, one beat writes the time", func(t *testing.T) {
		clock.Advance(10 * time.Second)
		before := lastIndex(s)
		heartbeat(t, s, ag, hb)
		if after := lastIndex(s); after != before+1 {
			t.Fatalf("log moved from %d to %d, want one write", before, after)
		}
		if rec, _ := s.State().Read().Agent(ag.ID); !rec.LastHeartbeatAt.Equal(clock.Now()) {
			t.Errorf("replicated last_heartbeat_at %s, want %s", rec.LastHeartbeatAt, clock.Now())
		}
	})

	t.Run("changed capacity and images are written at once", func(t *testing.T) {
		changed := hb
		changed.Capacity = mustSlots(`{"cpu":5,"mem":1073741824}`)
		changed.Images = []api.Image{}
		before := lastIndex(s)
		heartbeat(t, s, ag, changed)
		heartbeat(t, s, ag, changed)
		if after := lastIndex(s); after != before+1 {
			t.Fatalf("log moved from %d to %d, want one write for the change and none for its repetition", before, after)
		}
		got := getAgent(t, s, admin, ag.ID)
		if got.Capacity.String() != "cpu=5 mem=1073741824" || len(got.Images) != 0 {
			t.Errorf("capacity %s images %v after the change", got.Capacity, got.Images)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/metrics", "", nil)
		wantStatus(t, r, http.StatusOK)
		for _, line := range []string{
			`berth_agent_heartbeats_total 23`,
			`berth_agents{simulated="false",status="ALIVE"} 1`,
			`berth_agents{simulated="false",status="LOST"} 0`,
			`berth_agents{simulated="true",status="ALIVE"} 0`,
			`berth_agent_capacity{agent="` + ag.ID + `",simulated="false",slot="cpu"} 5`,
			`berth_agent_capacity{agent="` + ag.ID + `",simulated="false",slot="mem"} 1.073741824e+09`,
			`berth_agent_used_cpu_seconds{agent="` + ag.ID + `",simulated="false"} 3.75`,
			`berth_agent_used_memory_bytes{agent="` + ag.ID + `",simulated="false"} 1.34217728e+08`,
		} {
			if !strings.Contains(string(r.Body), line+"\n") {
				t.Errorf("/metrics lacks %q", line)
			}
		}
	})

	t.Run("refused heartbeats", func(t *testing.T) {
		for name, c := range map[string]struct{ id, secret string }{
			"wrong secret": {ag.ID, strings.Repeat("y", 40)}, "no secret": {ag.ID, ""}, "unknown agent": {"agent-000000000000", ag.Secret},
		} {
			r := agentCall(t, s, http.MethodPost, "/v1/agents/"+c.id+"/heartbeat", "", c.secret, hb)
			if r.Status != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want 401", name, r.Status)
			}
		}
		r := agentCall(t, s, http.MethodPost, "/v1/agents/"+ag.ID+"/heartbeat", "", ag.Secret,
			map[string]any{"address": "10.0.0.5", "capacity": map[string]any{"cpu": 1}})
		wantFields(t, wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation), map[string][]string{
			"address":      {"address must be host:port where the managers reach the agent's API, e.g. 10.0.0.5:6001"},
			"capacity.mem": {"capacity.mem is required"},
		})
	})
}

// TestAgentLostAfterTheTimeoutAndBackOnItsNextHeartbeat: one agent goes
// silent and is LOST after the 1 s timeout, while another that keeps
// beating stays ALIVE; the silent one's next beat makes it ALIVE again.
func TestAgentLostAfterTheTimeoutAndBackOnItsNextHeartbeat(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t, withAgentToken, func(cfg *server.Config) { cfg.HeartbeatTimeout, cfg.DisconnectGrace = time.Second, time.Second }).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	silent := register(t, s, registration("10.0.0.5:6001"))
	busy := register(t, s, registration("10.0.0.6:6001"))
	beat := api.AgentHeartbeat{Capacity: registration("").Capacity}

	testcluster.Eventually(t, 15*time.Second, func() error {
		heartbeat(t, s, busy, beat) // every poll, well within the timeout
		if st := getAgent(t, s, admin, silent.ID).Status; st != api.AgentLost {
			return fmt.Errorf("the silent agent is %s", st)
		}
		return nil
	})
	if st := getAgent(t, s, admin, busy.ID).Status; st != api.AgentAlive {
		t.Fatalf("the agent that kept beating is %s", st)
	}
	var info api.Info
	testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/info", admin, nil).JSON(t, &info)
	if info.Agents.Alive != 1 || info.Agents.Lost != 1 {
		t.Errorf("info counts %+v, want 1 alive and 1 lost", info.Agents)
	}

	if got := heartbeat(t, s, silent, beat); got.Status != api.AgentAlive {
		t.Fatalf("the heartbeat of a LOST agent answered %s, want ALIVE", got.Status)
	}
	if st := getAgent(t, s, admin, silent.ID).Status; st != api.AgentAlive {
		t.Fatalf("after its heartbeat the agent is %s", st)
	}
}

func TestAgentDesiredIsABlockingQuery(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t, withAgentToken).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	ag := register(t, s, registration("10.0.0.5:6001"))
	desired := func(query string) (api.DesiredState, *testcluster.Response) {
		r := agentCall(t, s, http.MethodGet, "/v1/agents/"+ag.ID+"/desired"+query, "", ag.Secret, nil)
		var out api.DesiredState
		if r.Status == http.StatusOK {
			r.JSON(t, &out)
		}
		return out, r
	}
	now, r := desired("")
	wantStatus(t, r, http.StatusOK)
	if now.Index == 0 || !strings.Contains(string(r.Body), `"containers":[]`) {
		t.Fatalf("desired without index: %s", r.Body)
	}

	t.Run("it waits for a write that concerns the agent, not for others", func(t *testing.T) {
		type answer struct {
			state api.DesiredState
			r     *testcluster.Response
		}
		done := make(chan answer, 1)
		start := time.Now()
		go func() {
			st, r := desired(fmt.Sprintf("?index=%d&wait=20s", now.Index))
			done <- answer{st, r}
		}()
		// Entries that concern no agent (a user) or another agent (its
		// registration, its record) are applied meanwhile: an answer now
		// would mean the query woke for them.
		before := lastIndex(s)
		proposeOK(t, s, fsm.GroupCreate{Group: state.Group{Domain: "default", Name: "lab", IsActive: true, CreatedAt: time.Now().UTC()}})
		other := register(t, s, registration("10.0.0.6:6001"))
		unschedulable := false
		proposeOK(t, s, fsm.AgentUpdate{ID: other.ID, Schedulable: &unschedulable})
		if lastIndex(s) <= before {
			t.Fatal("nothing was written")
		}
		select {
		case a := <-done:
			t.Fatalf("answered for entries of no concern to the agent: %d %s", a.r.Status, a.r.Body)
		case <-time.After(300 * time.Millisecond):
		}
		// A change of its own record is its business.
		proposeOK(t, s, fsm.AgentUpdate{ID: ag.ID, Schedulable: &unschedulable})
		a := <-done
		wantStatus(t, a.r, http.StatusOK)
		if a.state.Index <= now.Index || a.state.Containers == nil {
			t.Errorf("answer %+v, want an index past %d", a.state, now.Index)
		}
		if waited := time.Since(start); waited > 15*time.Second {
			t.Errorf("the write did not end the wait (answered after %s)", waited)
		}
		now = a.state
	})

	t.Run("a policy change wakes every agent", func(t *testing.T) {
		done := make(chan api.DesiredState, 1)
		go func() {
			st, _ := desired(fmt.Sprintf("?index=%d&wait=20s", now.Index))
			done <- st
		}()
		r := testcluster.Do(t, http.MethodPatch, testcluster.URL(s)+"/v1/resource-policies/default", admin, `{"max_vfolder_size":1048576}`)
		wantStatus(t, r, http.StatusOK)
		if got := <-done; got.Index <= now.Index {
			t.Errorf("answer at %d after a policy change, want past %d", got.Index, now.Index)
		}
	})

	t.Run("without a write it answers when wait elapses", func(t *testing.T) {
		cur, _ := desired("")
		start := time.Now()
		got, r := desired(fmt.Sprintf("?index=%d&wait=300ms", cur.Index))
		wantStatus(t, r, http.StatusOK)
		if waited := time.Since(start); waited < 300*time.Millisecond || got.Index != cur.Index {
			t.Errorf("answered after %s with index %d, want after 300ms with %d", waited, got.Index, cur.Index)
		}
	})

	t.Run("bad queries and credentials", func(t *testing.T) {
		_, r := desired("?index=x&wait=1h")
		wantFields(t, wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation), map[string][]string{
			"index": {"index must be a whole number: the index of the previous answer"},
			"wait":  {"wait must be a duration from 0s to 5m0s, e.g. 30s"},
		})
		r = agentCall(t, s, http.MethodGet, "/v1/agents/"+ag.ID+"/desired", "", "", nil)
		wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized)
	})
}

func TestAgentAdminViews(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t, withAgentToken).Servers[0]
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	createUser(t, s, super, "watch@example.com", "watch", api.RoleMonitor)
	createUser(t, s, super, "plain@example.com", "plain", api.RoleUser)
	monitor := testcluster.Login(t, s, "watch@example.com", testPassword)
	user := testcluster.Login(t, s, "plain@example.com", testPassword)
	base := api.Image{Name: "berth/base:latest", Digest: "sha256:aa", Size: 1 << 20}
	py := api.Image{Name: "python:3.12", Digest: "sha256:bb", Size: 50 << 20}
	cuda := api.Image{Name: "cuda:12", Digest: "sha256:cc", Size: 3 << 30}
	a := register(t, s, registration("10.0.0.1:6001", base, py))
	b := register(t, s, registration("10.0.0.2:6001", base))
	lost := register(t, s, registration("10.0.0.3:6001", base, cuda))
	lostStatus := state.AgentLost
	proposeOK(t, s, fsm.AgentUpdate{ID: lost.ID, Status: &lostStatus})
	url := testcluster.URL(s)

	list := func(token, query string) api.List[api.Agent] {
		t.Helper()
		r := testcluster.Do(t, http.MethodGet, url+"/v1/agents"+query, token, nil)
		wantStatus(t, r, http.StatusOK)
		var out api.List[api.Agent]
		r.JSON(t, &out)
		return out
	}
	t.Run("list, filter and page", func(t *testing.T) {
		if got := list(monitor, ""); len(got.Items) != 3 || got.Items[0].ID > got.Items[1].ID {
			t.Errorf("listed %+v, want 3 agents by id", got.Items)
		}
		if got := list(super, "?status=LOST"); len(got.Items) != 1 || got.Items[0].ID != lost.ID {
			t.Errorf("LOST agents %+v", got.Items)
		}
		first := list(super, "?limit=2")
		rest := list(super, "?limit=2&cursor="+first.NextCursor)
		if len(first.Items) != 2 || first.NextCursor == "" || len(rest.Items) != 1 || rest.NextCursor != "" {
			t.Errorf("pages of %d (next %q) and %d (next %q)", len(first.Items), first.NextCursor, len(rest.Items), rest.NextCursor)
		}
		wantProblem(t, testcluster.Do(t, http.MethodGet, url+"/v1/agents?status=gone", super, nil), http.StatusBadRequest, api.ProblemValidation)
		wantProblem(t, testcluster.Do(t, http.MethodGet, url+"/v1/agents", user, nil), http.StatusForbidden, api.ProblemForbidden)
		wantProblem(t, testcluster.Do(t, http.MethodGet, url+"/v1/agents/agent-000000000000", super, nil), http.StatusNotFound, api.ProblemNotFound)
	})

	t.Run("schedulable", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodPatch, url+"/v1/agents/"+a.ID, super, map[string]any{"schedulable": false})
		wantStatus(t, r, http.StatusOK)
		var got api.Agent
		r.JSON(t, &got)
		if got.Schedulable || got.ID != a.ID {
			t.Fatalf("PATCH answered %+v", got)
		}
		// What the admin decided survives the agent registering again.
		again := registration("10.0.0.1:6001", base, py)
		again.ID = a.ID
		wantStatus(t, agentCall(t, s, http.MethodPost, "/v1/agents/register", testAgentToken, a.Secret, again), http.StatusOK)
		if getAgent(t, s, super, a.ID).Schedulable {
			t.Error("registering again made the agent schedulable")
		}
		wantProblem(t, testcluster.Do(t, http.MethodPatch, url+"/v1/agents/"+a.ID, monitor, map[string]any{"schedulable": true}), http.StatusForbidden, api.ProblemForbidden)
		wantProblem(t, testcluster.Do(t, http.MethodPatch, url+"/v1/agents/agent-000000000000", super, map[string]any{"schedulable": true}), http.StatusNotFound, api.ProblemNotFound)
		p := wantProblem(t, testcluster.Do(t, http.MethodPatch, url+"/v1/agents/"+a.ID, super, map[string]any{}), http.StatusBadRequest, api.ProblemValidation)
		wantFields(t, p, map[string][]string{"schedulable": {"schedulable is required (true or false)"}})
	})

	t.Run("images of the ALIVE agents", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, url+"/v1/images", monitor, nil)
		wantStatus(t, r, http.StatusOK)
		var got api.List[api.ClusterImage]
		r.JSON(t, &got)
		first, second := a.ID, b.ID
		if second < first {
			first, second = second, first
		}
		wantJSON(t, "images", got, `{"items":[
			{"name":"berth/base:latest","digest":"sha256:aa","size":1048576,"agents":["`+first+`","`+second+`"]},
			{"name":"python:3.12","digest":"sha256:bb","size":52428800,"agents":["`+a.ID+`"]}],"next_cursor":""}`)

		// A user is offered the images to start a session with, not
		// which node has them.
		r = testcluster.Do(t, http.MethodGet, url+"/v1/images", user, nil)
		wantStatus(t, r, http.StatusOK)
		r.JSON(t, &got)
		wantJSON(t, "images a user sees", got, `{"items":[
			{"name":"berth/base:latest","digest":"sha256:aa","size":1048576,"agents":[]},
			{"name":"python:3.12","digest":"sha256:bb","size":52428800,"agents":[]}],"next_cursor":""}`)
	})
}

// mustSlots reads slots as the wire writes them.
func mustSlots(text string) slots.Slots {
	var s slots.Slots
	if err := s.UnmarshalJSON([]byte(text)); err != nil {
		panic(fmt.Sprintf("test slots %s: %v", text, err))
	}
	return s
}
