package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Shared helpers of the session tests: a manager on a fake cluster with
// one fake agent (registered through the agents API, heartbeating only when
// told) and a way to put a session where the test needs it without
// depending on the scheduler's timing.

const baseImage = "berth/base:latest"

type sessionEnv struct {
	t        *testing.T
	s        *server.Server
	admin    string // admin's login token
	agent    api.AgentRegistered
	capacity api.AgentHeartbeat // what each beat says besides containers
}

// newSessionEnv starts a manager on a fake cluster with an agent of the
// given capacity at address (host:port of a fake agent API, or any
// placeholder) that has the base image, and sets the default policy's
// slots.
func newSessionEnv(t *testing.T, address, capacity, limits string, tweak ...func(*server.Config)) *sessionEnv {
	t.Helper()
	s := testcluster.StartFake(t, append([]func(*server.Config){withAgentToken}, tweak...)...).Servers[0]
	e := &sessionEnv{t: t, s: s, admin: testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)}
	in := registration(address, api.Image{Name: baseImage, Digest: "sha256:aa", Size: 1 << 20})
	in.Capacity = mustSlots(capacity)
	e.agent = register(t, s, in)
	e.capacity = api.AgentHeartbeat{Address: in.Address, Capacity: in.Capacity}
	r := testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/default"), e.admin,
		fmt.Sprintf(`{"total_resource_slots":%s,"max_containers_per_session":2}`, limits))
	wantStatus(t, r, http.StatusOK)
	return e
}

func (e *sessionEnv) url(path string) string { return testcluster.URL(e.s) + path }

// create posts a session request as the token's owner.
func (e *sessionEnv) create(token string, body any) *testcluster.Response {
	e.t.Helper()
	return testcluster.Do(e.t, http.MethodPost, e.url("/v1/sessions"), token, body)
}

// mustCreate creates a session and returns it.
func (e *sessionEnv) mustCreate(token string, body any) api.Session {
	e.t.Helper()
	r := e.create(token, body)
	wantStatus(e.t, r, http.StatusCreated)
	var out api.Session
	r.JSON(e.t, &out)
	return out
}

func (e *sessionEnv) get(token, id string) api.Session {
	e.t.Helper()
	r := testcluster.Do(e.t, http.MethodGet, e.url("/v1/sessions/"+id), token, nil)
	wantStatus(e.t, r, http.StatusOK)
	var out api.Session
	r.JSON(e.t, &out)
	return out
}

// terminate sends DELETE and returns the 202's session.
func (e *sessionEnv) terminate(t *testing.T, token, id string) api.Session {
	t.Helper()
	r := testcluster.Do(t, http.MethodDelete, e.url("/v1/sessions/"+id), token, nil)
	wantStatus(t, r, http.StatusAccepted)
	var out api.Session
	r.JSON(t, &out)
	return out
}

// waitStatus waits until the session is in the status.
func (e *sessionEnv) waitStatus(id string, status api.SessionStatus) api.Session {
	e.t.Helper()
	var got api.Session
	testcluster.Eventually(e.t, 15*time.Second, func() error {
		got = e.get(e.admin, id)
		if got.Status != status {
			return fmt.Errorf("session %s is %s (%s), want %s", id, got.Status, got.StatusInfo, status)
		}
		return nil
	})
	return got
}

// place puts a PENDING session's containers on the fake agent with a plan
// of its own (the scheduler, when it runs, may be first: either way the
// session ends up SCHEDULED there, the only agent).
func (e *sessionEnv) place(id string, containers int) {
	e.t.Helper()
	placed := make([]fsm.PlacedContainer, containers)
	for i := range placed {
		placed[i].Agent = e.agent.ID
	}
	plan := fsm.Plan{Version: fsm.PlanVersion, At: time.Now().UTC(), Placements: []fsm.Placement{{SessionID: id, Containers: placed}}}
	resp, err := e.s.Propose(context.Background(), plan)
	if err != nil {
		e.t.Fatalf("propose plan: %v", err)
	}
	if resp.Err != nil {
		e.t.Fatalf("plan refused: %v", resp.Err)
	}
	e.waitStatus(id, api.SessionScheduled)
}

// beat sends a heartbeat reporting the containers (nil: none reported).
func (e *sessionEnv) beat(containers ...api.ContainerReport) {
	e.t.Helper()
	if containers == nil {
		containers = []api.ContainerReport{}
	}
	hb := e.capacity
	hb.Containers = containers
	heartbeat(e.t, e.s, e.agent, hb)
}

// running is a report of container index of session id, running, having
// used cpu seconds.
func running(id string, index int, cpu float64) api.ContainerReport {
	return api.ContainerReport{ID: fmt.Sprintf("%s-%d", id, index), SessionID: id, Index: index, Status: "running", CPUSeconds: cpu}
}

// desired fetches the agent's desired state at once.
func (e *sessionEnv) desired() api.DesiredState {
	e.t.Helper()
	r := agentCall(e.t, e.s, http.MethodGet, "/v1/agents/"+e.agent.ID+"/desired", "", e.agent.Secret, nil)
	wantStatus(e.t, r, http.StatusOK)
	var out api.DesiredState
	r.JSON(e.t, &out)
	return out
}

// oneCPU is a request for one core and 1 GiB.
func oneCPU(extra map[string]any) map[string]any {
	body := map[string]any{"image": baseImage, "type": "interactive", "resources": map[string]any{"cpu": 1, "mem": 1 << 30}}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

func cpuOf(s slots.Slots) string { return slots.Format(slots.CPU, s[slots.CPU]).String() }
