package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// TestResourceIndicator follows the reference manual's walkthrough
// "Limiting Maximum Compute Resources per User": with the default policy
// unlimited the indicator shows what the nodes hold; after an admin sets
// 2 CPU, 4 GiB and 1 fGPU on it, it shows those limits.
func TestResourceIndicator(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	admin := policyClient{t: t, s: s, token: super}
	student := createUser(t, s, super, "student@example.com", "student", api.RoleUser)
	createUser(t, s, super, "watcher@example.com", "watcher", api.RoleMonitor)
	user := admin.as(testcluster.Login(t, s, "student@example.com", testPassword))
	monitor := admin.as(testcluster.Login(t, s, "watcher@example.com", testPassword))
	indicator := func(pc policyClient, query string) api.ResourceIndicator {
		t.Helper()
		r := pc.do(http.MethodGet, "/v1/resources/me"+query, nil)
		wantStatus(t, r, http.StatusOK)
		var out api.ResourceIndicator
		r.JSON(t, &out)
		return out
	}
	const zero = `{"cpu":0,"mem":0,"cuda.device":0,"cuda.shares":0}`
	const unlimited = `{"cpu":null,"mem":null,"cuda.device":null,"cuda.shares":null}`

	t.Run("no agents: unlimited limits and zero everywhere else", func(t *testing.T) {
		r := user.do(http.MethodGet, "/v1/resources/me", nil)
		wantStatus(t, r, http.StatusOK)
		var got map[string]any
		r.JSON(t, &got)
		wantJSON(t, "indicator", got, `{"access_key":"`+student.Keypair.AccessKey+`","resource_policy":"default",
			"limits":`+unlimited+`,"occupied":`+zero+`,"remaining":`+unlimited+`,
			"cluster":{"total":`+zero+`,"free":`+zero+`,"largest_agent_free":`+zero+`},
			"allocatable":`+zero+`,"concurrency":{"used":0,"max":null},"max_containers_per_session":100,"allow_root":false,"allowed_images":[]}`)
	})

	// A test node of 8 cores, 16 GiB and two GPUs of fGPU, one smaller
	// node nobody may schedule on, and a lost one that counts nowhere.
	now := time.Now().UTC()
	for _, a := range []state.Agent{
		{ID: "node-1", Status: state.AgentAlive, Schedulable: true, LastHeartbeatAt: now,
			Capacity: slots.Slots{slots.CPU: 8000, slots.Mem: 16 << 30, slots.CUDAShares: 200}},
		{ID: "node-2", Status: state.AgentAlive, Schedulable: false, LastHeartbeatAt: now,
			Capacity: slots.Slots{slots.CPU: 4000, slots.Mem: 8 << 30}},
		{ID: "node-3", Status: state.AgentLost, Schedulable: true, LastHeartbeatAt: now,
			Capacity: slots.Slots{slots.CPU: 64000, slots.Mem: 256 << 30, slots.CUDADevice: 8}},
	} {
		proposeOK(t, s, fsm.AgentPut{Agent: a})
	}

	t.Run("unlimited policy: the indicator shows what the nodes hold", func(t *testing.T) {
		got := indicator(user, "")
		wantJSON(t, "limits", got.Limits, unlimited)
		wantJSON(t, "remaining", got.Remaining, unlimited)
		wantJSON(t, "cluster", got.Cluster, `{"total":{"cpu":12,"mem":25769803776,"cuda.device":0,"cuda.shares":2},
			"free":{"cpu":12,"mem":25769803776,"cuda.device":0,"cuda.shares":2},
			"largest_agent_free":{"cpu":8,"mem":17179869184,"cuda.device":0,"cuda.shares":2}}`)
		wantJSON(t, "allocatable", got.Allocatable, `{"cpu":8,"mem":17179869184,"cuda.device":0,"cuda.shares":2}`)
	})

	t.Run("the admin sets 2 CPU, 4 GiB, 1 fGPU on default: the indicator shows the limits", func(t *testing.T) {
		r := admin.do(http.MethodPatch, "/v1/resource-policies/default", map[string]any{
			"total_resource_slots": map[string]any{"cpu": 2, "mem": 4 << 30, "cuda.shares": 1}})
		wantStatus(t, r, http.StatusOK)
		wantJSON(t, "policy slots", wirePolicy(t, r)["total_resource_slots"], `{"cpu":2,"mem":4294967296,"cuda.device":null,"cuda.shares":1}`)
		got := indicator(user, "")
		wantJSON(t, "limits", got.Limits, `{"cpu":2,"mem":4294967296,"cuda.device":null,"cuda.shares":1}`)
		wantJSON(t, "remaining", got.Remaining, `{"cpu":2,"mem":4294967296,"cuda.device":null,"cuda.shares":1}`)
		wantJSON(t, "allocatable", got.Allocatable, `{"cpu":2,"mem":4294967296,"cuda.device":0,"cuda.shares":1}`)
		wantJSON(t, "occupied", got.Occupied, zero)
		if got.Cluster.Total[slots.CPU] != 12000 {
			t.Errorf("cluster total %v: the policy must not change what the nodes hold", got.Cluster.Total)
		}
	})

	t.Run("concurrency max is the policy's max_concurrent_sessions", func(t *testing.T) {
		wantStatus(t, admin.do(http.MethodPatch, "/v1/resource-policies/default", map[string]any{"max_concurrent_sessions": 3}), http.StatusOK)
		wantJSON(t, "concurrency", indicator(user, "").Concurrency, `{"used":0,"max":3}`)
	})

	t.Run("a keypair-signed request shows that keypair", func(t *testing.T) {
		r := send(t, signedRequest(t, http.MethodGet, testcluster.URL(s)+"/v1/resources/me", student.Keypair, nil, time.Now()))
		wantStatus(t, r, http.StatusOK)
		var got api.ResourceIndicator
		r.JSON(t, &got)
		if got.AccessKey != student.Keypair.AccessKey || got.ResourcePolicy != "default" {
			t.Errorf("indicator of %s on %s", got.AccessKey, got.ResourcePolicy)
		}
	})

	t.Run("who may name an access key", func(t *testing.T) {
		wantStatus(t, admin.do(http.MethodPost, "/v1/resource-policies", map[string]any{
			"name": "admins", "total_resource_slots": map[string]any{"cpu": 64}}), http.StatusCreated)
		proposeOK(t, s, fsm.KeypairPut{Keypair: state.Keypair{AccessKey: "AKADMINEXTRA0000000", SecretKey: "x",
			User: testcluster.AdminEmail, IsActive: true, IsAdmin: true, ResourcePolicy: "admins", CreatedAt: now}})

		if got := indicator(user, "?access_key="+student.Keypair.AccessKey); got.AccessKey != student.Keypair.AccessKey {
			t.Errorf("a user naming their own key got %s", got.AccessKey)
		}
		for _, key := range []string{"AKADMINEXTRA0000000", "AKNOSUCHKEY00000000"} {
			p := wantProblem(t, user.do(http.MethodGet, "/v1/resources/me?access_key="+key, nil), http.StatusForbidden, api.ProblemForbidden)
			wantFields(t, p, map[string][]string{"access_key": {"you may see only your own keypairs' resources; only admins may name another user's access key"}})
		}
		got := indicator(admin, "?access_key=AKADMINEXTRA0000000")
		wantJSON(t, "admin's other keypair", got.Limits, `{"cpu":64,"mem":null,"cuda.device":null,"cuda.shares":null}`)
		if got = indicator(admin, "?access_key="+student.Keypair.AccessKey); got.AccessKey != student.Keypair.AccessKey || got.Limits[slots.CPU] != 2000 {
			t.Errorf("admin reading the student's keypair got %s with limits %v", got.AccessKey, got.Limits)
		}
		if got = indicator(monitor, "?access_key="+student.Keypair.AccessKey); got.AccessKey != student.Keypair.AccessKey {
			t.Errorf("monitor reading the student's keypair got %s", got.AccessKey)
		}
		p := wantProblem(t, admin.do(http.MethodGet, "/v1/resources/me?access_key=AKNOSUCHKEY00000000", nil), http.StatusNotFound, api.ProblemNotFound)
		wantFields(t, p, map[string][]string{"access_key": {"no keypair with access key AKNOSUCHKEY00000000"}})
		// Logged in with a token, the admin sees their oldest active keypair
		// (the bootstrap one on default), not the newer one.
		if got = indicator(admin, ""); got.ResourcePolicy != "default" {
			t.Errorf("a token caller's indicator is for a keypair on %s, want the first one on default", got.ResourcePolicy)
		}
		wantProblem(t, admin.as("").do(http.MethodGet, "/v1/resources/me", nil), http.StatusUnauthorized, api.ProblemUnauthorized)
	})
}
