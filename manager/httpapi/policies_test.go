package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// policyClient calls the resource-policy routes of one manager as one caller.
type policyClient struct {
	t     *testing.T
	s     *server.Server
	token string
}

func (p policyClient) do(method, path string, body any) *testcluster.Response {
	p.t.Helper()
	return testcluster.Do(p.t, method, testcluster.URL(p.s)+path, p.token, body)
}

// as is the same client with another caller's token.
func (p policyClient) as(token string) policyClient { p.token = token; return p }

// wirePolicy decodes a policy answer into a generic map, so the test sees
// exactly what a client sees (nulls, lists, decimals).
func wirePolicy(t *testing.T, r *testcluster.Response) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// wantJSON compares a value with the JSON text a client must see.
func wantJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	raw, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	// Both sides through a generic value, so key order does not matter.
	var g, w any
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("%s = %s, want %s", what, gb, wb)
	}
}

func TestResourcePolicies(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	admin := policyClient{t: t, s: s, token: super}
	createUser(t, s, super, "watcher@example.com", "watcher", api.RoleMonitor)
	createUser(t, s, super, "plain@example.com", "plain", api.RoleUser)
	monitor := admin.as(testcluster.Login(t, s, "watcher@example.com", testPassword))
	user := admin.as(testcluster.Login(t, s, "plain@example.com", testPassword))
	const gib = int64(1) << 30

	t.Run("a policy created with a name only takes the defaults", func(t *testing.T) {
		r := admin.do(http.MethodPost, "/v1/resource-policies", map[string]any{"name": "bare"})
		wantStatus(t, r, http.StatusCreated)
		got := wirePolicy(t, r)
		delete(got, "created_at")
		delete(got, "modified_at")
		wantJSON(t, "policy", got, `{"name":"bare","total_resource_slots":{"cpu":null,"mem":null,"cuda.device":null,"cuda.shares":null},
			"max_containers_per_session":1,"idle_timeout":0,"max_concurrent_sessions":null,"max_session_lifetime":null,
			"allowed_vfolder_hosts":[],"max_vfolder_size":null,"max_vfolder_count":10,"allow_root":false,"allow_egress":true,"allowed_images":[],
			"max_disconnect":null,"max_disconnect_effective":300}`)
	})

	t.Run("create, get, update and delete", func(t *testing.T) {
		r := admin.do(http.MethodPost, "/v1/resource-policies", map[string]any{
			"name": "student", "total_resource_slots": map[string]any{"cpu": 2.5, "mem": 4 * gib, "cuda.shares": 0.25},
			"max_containers_per_session": 2, "idle_timeout": 3600, "max_concurrent_sessions": 3, "max_session_lifetime": 86400,
			"allowed_vfolder_hosts": []string{"local", "nfs-1"}, "max_vfolder_size": 10 * gib, "max_vfolder_count": 5,
			"allow_root": true, "allow_egress": false,
		})
		wantStatus(t, r, http.StatusCreated)
		want := `{"name":"student","total_resource_slots":{"cpu":2.5,"mem":4294967296,"cuda.device":null,"cuda.shares":0.25},
			"max_containers_per_session":2,"idle_timeout":3600,"max_concurrent_sessions":3,"max_session_lifetime":86400,
			"allowed_vfolder_hosts":["local","nfs-1"],"max_vfolder_size":10737418240,"max_vfolder_count":5,"allow_root":true,"allow_egress":false,"allowed_images":[],
			"max_disconnect":null,"max_disconnect_effective":300}`
		created := wirePolicy(t, r)
		if created["created_at"] == "" || created["created_at"] != created["modified_at"] {
			t.Errorf("created_at %v, modified_at %v: want both, equal", created["created_at"], created["modified_at"])
		}
		delete(created, "created_at")
		delete(created, "modified_at")
		wantJSON(t, "created", created, want)

		got := wirePolicy(t, admin.do(http.MethodGet, "/v1/resource-policies/student", nil))
		delete(got, "created_at")
		delete(got, "modified_at")
		wantJSON(t, "read back", got, want)

		// Only the fields sent change; a slot sent as null becomes
		// unlimited, slots not named stay; the same name may be repeated.
		r = admin.do(http.MethodPatch, "/v1/resource-policies/student", map[string]any{
			"name": "student", "total_resource_slots": map[string]any{"cpu": nil, "cuda.device": 1},
			"max_concurrent_sessions": nil, "idle_timeout": 0, "allow_root": false, "allow_egress": true,
		})
		wantStatus(t, r, http.StatusOK)
		got = wirePolicy(t, r)
		delete(got, "created_at")
		delete(got, "modified_at")
		wantJSON(t, "updated", got, `{"name":"student","total_resource_slots":{"cpu":null,"mem":4294967296,"cuda.device":1,"cuda.shares":0.25},
			"max_containers_per_session":2,"idle_timeout":0,"max_concurrent_sessions":null,"max_session_lifetime":86400,
			"allowed_vfolder_hosts":["local","nfs-1"],"max_vfolder_size":10737418240,"max_vfolder_count":5,"allow_root":false,"allow_egress":true,"allowed_images":[],
			"max_disconnect":null,"max_disconnect_effective":300}`)

		// total_resource_slots null makes every slot unlimited.
		r = admin.do(http.MethodPatch, "/v1/resource-policies/student", map[string]any{"total_resource_slots": nil, "allowed_vfolder_hosts": nil})
		wantStatus(t, r, http.StatusOK)
		got = wirePolicy(t, r)
		wantJSON(t, "slots", got["total_resource_slots"], `{"cpu":null,"mem":null,"cuda.device":null,"cuda.shares":null}`)
		wantJSON(t, "hosts", got["allowed_vfolder_hosts"], `[]`)

		var list api.List[api.ResourcePolicy]
		admin.do(http.MethodGet, "/v1/resource-policies", nil).JSON(t, &list)
		var names []string
		for _, p := range list.Items {
			names = append(names, p.Name)
		}
		if strings.Join(names, ",") != "bare,default,student" {
			t.Errorf("list %v, want bare, default, student by name", names)
		}

		wantStatus(t, admin.do(http.MethodDelete, "/v1/resource-policies/student", nil), http.StatusNoContent)
		p := wantProblem(t, admin.do(http.MethodGet, "/v1/resource-policies/student", nil), http.StatusNotFound, api.ProblemNotFound)
		wantDetail(t, p, "no resource policy named student")
		wantProblem(t, admin.do(http.MethodDelete, "/v1/resource-policies/student", nil), http.StatusNotFound, api.ProblemNotFound)
		wantProblem(t, admin.do(http.MethodPatch, "/v1/resource-policies/student", map[string]any{"idle_timeout": 1}), http.StatusNotFound, api.ProblemNotFound)
	})

	t.Run("the list pages by name", func(t *testing.T) {
		var page api.List[api.ResourcePolicy]
		admin.do(http.MethodGet, "/v1/resource-policies?limit=1", nil).JSON(t, &page)
		if len(page.Items) != 1 || page.Items[0].Name != "bare" || page.NextCursor != "default" {
			t.Fatalf("first page %+v, next %q", page.Items, page.NextCursor)
		}
		admin.do(http.MethodGet, "/v1/resource-policies?limit=1&cursor="+page.NextCursor, nil).JSON(t, &page)
		if len(page.Items) != 1 || page.Items[0].Name != "default" {
			t.Fatalf("second page %+v", page.Items)
		}
		p := wantProblem(t, admin.do(http.MethodGet, "/v1/resource-policies?limit=0", nil), http.StatusBadRequest, api.ProblemValidation)
		wantFields(t, p, map[string][]string{"limit": {"limit must be a whole number from 1 to 1000"}})
	})

	t.Run("a duplicate name is 409", func(t *testing.T) {
		p := wantProblem(t, admin.do(http.MethodPost, "/v1/resource-policies", map[string]any{"name": "default"}), http.StatusConflict, api.ProblemConflict)
		wantFields(t, p, map[string][]string{"name": {"a resource policy named default already exists"}})
	})

	t.Run("the name cannot change", func(t *testing.T) {
		p := wantProblem(t, admin.do(http.MethodPatch, "/v1/resource-policies/bare", map[string]any{"name": "renamed"}), http.StatusBadRequest, api.ProblemValidation)
		wantFields(t, p, map[string][]string{"name": {"the name is the policy's primary key and cannot be changed; create a new policy and move the keypairs to it"}})
		wantProblem(t, admin.do(http.MethodGet, "/v1/resource-policies/renamed", nil), http.StatusNotFound, api.ProblemNotFound)
	})

	t.Run("an update that changes nothing is 400", func(t *testing.T) {
		for _, body := range []string{`{}`, `{"name":"bare"}`} {
			p := wantProblem(t, admin.do(http.MethodPatch, "/v1/resource-policies/bare", body), http.StatusBadRequest, api.ProblemValidation)
			wantDetail(t, p, "the request changes nothing; send at least one field to change")
		}
	})

	t.Run("default can never be deleted", func(t *testing.T) {
		p := wantProblem(t, admin.do(http.MethodDelete, "/v1/resource-policies/default", nil), http.StatusConflict, api.ProblemConflict)
		wantDetail(t, p, "the default policy cannot be deleted")
	})

	t.Run("delete in use counts inactive users and inactive keypairs", func(t *testing.T) {
		for _, name := range []string{"lab", "dormant"} {
			wantStatus(t, admin.do(http.MethodPost, "/v1/resource-policies", map[string]any{"name": name}), http.StatusCreated)
		}
		newUser := func(email, name, policy, status string) {
			wantStatus(t, admin.do(http.MethodPost, "/v1/users", map[string]any{
				"email": email, "username": name, "password": testPassword, "resource_policy": policy, "status": status,
			}), http.StatusCreated)
		}
		// Only an inactive user's (inactive) keypair holds "dormant".
		newUser("gone@example.com", "gone", "dormant", api.StatusInactive)
		p := wantProblem(t, admin.do(http.MethodDelete, "/v1/resource-policies/dormant", nil), http.StatusConflict, api.ProblemConflict)
		wantDetail(t, p, "resource policy dormant is in use: 1 keypair of 1 user holds it, inactive ones included (gone@example.com)")

		// "lab": an active user's keypair, an inactive keypair of that user,
		// and an inactive user's keypair.
		newUser("active@example.com", "active", "lab", api.StatusActive)
		newUser("left@example.com", "left", "lab", api.StatusInactive)
		proposeOK(t, s, fsm.KeypairPut{Keypair: state.Keypair{AccessKey: "AKOFFLINE0000000000", SecretKey: "x",
			User: "active@example.com", IsActive: false, ResourcePolicy: "lab", CreatedAt: time.Now().UTC()}})
		p = wantProblem(t, admin.do(http.MethodDelete, "/v1/resource-policies/lab", nil), http.StatusConflict, api.ProblemConflict)
		wantDetail(t, p, "resource policy lab is in use: 3 keypairs of 2 users hold it, inactive ones included (active@example.com, left@example.com); move them to another policy first")
		wantStatus(t, admin.do(http.MethodGet, "/v1/resource-policies/lab", nil), http.StatusOK)
	})

	t.Run("admins and monitors read, only superadmins write, users neither", func(t *testing.T) {
		createUser(t, s, super, "domadmin@example.com", "domadmin", api.RoleAdmin)
		domainAdmin := admin.as(testcluster.Login(t, s, "domadmin@example.com", testPassword))
		for _, path := range []string{"/v1/resource-policies", "/v1/resource-policies/default", "/v1/export/resource-policies.csv"} {
			wantStatus(t, monitor.do(http.MethodGet, path, nil), http.StatusOK)
			wantStatus(t, domainAdmin.do(http.MethodGet, path, nil), http.StatusOK)
			p := wantProblem(t, user.do(http.MethodGet, path, nil), http.StatusForbidden, api.ProblemForbidden)
			wantDetail(t, p, "requires the admin role; you are user")
		}
		writes := []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, "/v1/resource-policies", map[string]any{"name": "sneaky"}},
			{http.MethodPatch, "/v1/resource-policies/bare", map[string]any{"idle_timeout": 5}},
			{http.MethodDelete, "/v1/resource-policies/bare", nil},
		}
		for _, w := range writes {
			p := wantProblem(t, monitor.do(w.method, w.path, w.body), http.StatusForbidden, api.ProblemForbidden)
			wantDetail(t, p, "requires the superadmin role; you are monitor")
			p = wantProblem(t, domainAdmin.do(w.method, w.path, w.body), http.StatusForbidden, api.ProblemForbidden)
			wantDetail(t, p, "requires the superadmin role; you are admin")
			wantProblem(t, user.do(w.method, w.path, w.body), http.StatusForbidden, api.ProblemForbidden)
		}
		wantStatus(t, admin.do(http.MethodGet, "/v1/resource-policies/bare", nil), http.StatusOK)
		wantProblem(t, admin.as("").do(http.MethodGet, "/v1/resource-policies", nil), http.StatusUnauthorized, api.ProblemUnauthorized)
	})
}

// proposeOK commits a command the API has no route for yet (keypairs in
// states the tests need) and fails the test if the FSM refuses it.
func proposeOK(t *testing.T, s *server.Server, cmd fsm.Command) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.Propose(ctx, cmd)
	if err != nil {
		t.Fatalf("propose %T: %v", cmd, err)
	}
	if r.Err != nil {
		t.Fatalf("%T refused: %v", cmd, r.Err)
	}
}

// TestResourcePolicyValidation sends each rule's violation and checks the
// status and every field reason; the valid extremes must pass.
func TestResourcePolicyValidation(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	admin := policyClient{t: t, s: s, token: testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)}
	const gib = int64(1) << 30
	slotsOf := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"name": "p", "total_resource_slots": m}
	}
	with := func(field string, v any) map[string]any { return map[string]any{"name": "p", field: v} }
	const (
		containers = "max_containers_per_session must be a whole number from 1 to 100"
		idle       = "idle_timeout must be a whole number of seconds from 0 (never) to 15552000 (180 days)"
		concurrent = "max_concurrent_sessions must be a whole number from 1 to 100, or null for unlimited"
		lifetime   = "max_session_lifetime must be a whole number of seconds, 0 or more (0: no limit), or null for no limit"
		size       = "max_vfolder_size must be a whole number of bytes from 0 to 1099511627776 (1024 GiB), or null for unlimited"
		count      = "max_vfolder_count must be a whole number from 0 to 50"
		disconnect = "max_disconnect must be a whole number of seconds from 0 to 2592000 (30 days), or null for the managers' -disconnect-grace"
		charset    = "name may contain only letters, digits, '.', '_' and '-'"
	)
	cases := []struct {
		name string
		body any
		want map[string][]string
	}{
		{"name missing", map[string]any{"idle_timeout": 1}, map[string][]string{"name": {"name is required"}}},
		{"name empty", map[string]any{"name": ""}, map[string][]string{"name": {"name is required"}}},
		{"name too long", map[string]any{"name": strings.Repeat("n", 65)}, map[string][]string{"name": {"name must be at most 64 characters"}}},
		{"name with a space", map[string]any{"name": "my policy"}, map[string][]string{"name": {charset}}},
		{"name with a slash", map[string]any{"name": "a/b"}, map[string][]string{"name": {charset}}},
		{"name non-ASCII", map[string]any{"name": "política"}, map[string][]string{"name": {charset}}},
		{"name dot-dot", map[string]any{"name": ".."}, map[string][]string{"name": {"name must not be . or .., which cannot appear in a URL path"}}},
		{"name a number", map[string]any{"name": 5}, map[string][]string{"name": {"name must be a string"}}},

		{"cpu over 512", slotsOf("cpu", 512.001), map[string][]string{"total_resource_slots.cpu": {"total_resource_slots.cpu must be at most 512 cores"}}},
		{"cpu negative", slotsOf("cpu", -1), map[string][]string{"total_resource_slots.cpu": {"total_resource_slots.cpu must not be negative"}}},
		{"cpu a string", slotsOf("cpu", "2"), map[string][]string{"total_resource_slots.cpu": {"total_resource_slots.cpu must be a number of cores, or null for unlimited"}}},
		{"cpu too precise", slotsOf("cpu", 0.0005), map[string][]string{"total_resource_slots.cpu": {"total_resource_slots.cpu must be at most 3 decimals (0.001 core)"}}},
		{"cpu an absurd exponent", `{"name":"p","total_resource_slots":{"cpu":1e999999}}`, map[string][]string{"total_resource_slots.cpu": {"total_resource_slots.cpu must be at most 512 cores"}}},
		{"mem over 1024 GiB", slotsOf("mem", 1024*gib+1), map[string][]string{"total_resource_slots.mem": {"total_resource_slots.mem must be at most 1099511627776 bytes (1024 GiB)"}}},
		{"mem not whole bytes", slotsOf("mem", 1.5), map[string][]string{"total_resource_slots.mem": {"total_resource_slots.mem must be a whole number of bytes"}}},
		{"mem a boolean", slotsOf("mem", true), map[string][]string{"total_resource_slots.mem": {"total_resource_slots.mem must be a number of bytes, or null for unlimited"}}},
		{"cuda.device over 64", slotsOf("cuda.device", 65), map[string][]string{"total_resource_slots.cuda.device": {"total_resource_slots.cuda.device must be at most 64 GPUs"}}},
		{"cuda.device fractional", slotsOf("cuda.device", 1.5), map[string][]string{"total_resource_slots.cuda.device": {"total_resource_slots.cuda.device must be a whole number of GPUs"}}},
		{"cuda.shares over 256", slotsOf("cuda.shares", 256.01), map[string][]string{"total_resource_slots.cuda.shares": {"total_resource_slots.cuda.shares must be at most 256 fGPU shares"}}},
		{"cuda.shares too precise", slotsOf("cuda.shares", 0.125), map[string][]string{"total_resource_slots.cuda.shares": {"total_resource_slots.cuda.shares must be at most 2 decimals (0.01 share)"}}},
		{"unknown slot", slotsOf("tpu", 1), map[string][]string{"total_resource_slots.tpu": {`unknown slot "tpu"; the slots are cpu, mem, cuda.device, cuda.shares`}}},
		{"slots not an object", with("total_resource_slots", []int{1}), map[string][]string{"total_resource_slots": {"total_resource_slots must be an object keyed by slot (cpu, mem, cuda.device, cuda.shares), each a number or null for unlimited"}}},

		{"containers 0", with("max_containers_per_session", 0), map[string][]string{"max_containers_per_session": {containers}}},
		{"containers 101", with("max_containers_per_session", 101), map[string][]string{"max_containers_per_session": {containers}}},
		{"containers fractional", with("max_containers_per_session", 1.5), map[string][]string{"max_containers_per_session": {containers}}},
		{"containers null", with("max_containers_per_session", nil), map[string][]string{"max_containers_per_session": {containers}}},
		{"idle negative", with("idle_timeout", -1), map[string][]string{"idle_timeout": {idle}}},
		{"idle over 180 days", with("idle_timeout", 15552001), map[string][]string{"idle_timeout": {idle}}},
		{"idle a string", with("idle_timeout", "1h"), map[string][]string{"idle_timeout": {idle}}},
		{"concurrent 0 is not unlimited", with("max_concurrent_sessions", 0), map[string][]string{"max_concurrent_sessions": {"max_concurrent_sessions must be from 1 to 100; 0 is not read as unlimited: send null for unlimited"}}},
		{"concurrent 101", with("max_concurrent_sessions", 101), map[string][]string{"max_concurrent_sessions": {concurrent}}},
		{"lifetime negative", with("max_session_lifetime", -1), map[string][]string{"max_session_lifetime": {lifetime}}},
		{"folder size over 1024 GiB", with("max_vfolder_size", 1024*gib+1), map[string][]string{"max_vfolder_size": {size}}},
		{"folder size negative", with("max_vfolder_size", -1), map[string][]string{"max_vfolder_size": {size}}},
		{"folder count 51", with("max_vfolder_count", 51), map[string][]string{"max_vfolder_count": {count}}},
		{"folder count negative", with("max_vfolder_count", -1), map[string][]string{"max_vfolder_count": {count}}},
		{"max_disconnect negative", with("max_disconnect", -1), map[string][]string{"max_disconnect": {disconnect}}},
		{"max_disconnect over 30 days", with("max_disconnect", 2592001), map[string][]string{"max_disconnect": {disconnect}}},
		{"max_disconnect fractional", with("max_disconnect", 1.5), map[string][]string{"max_disconnect": {disconnect}}},
		{"max_disconnect a duration string", with("max_disconnect", "5m"), map[string][]string{"max_disconnect": {disconnect}}},
		{"max_disconnect_effective is the manager's", with("max_disconnect_effective", 60), map[string][]string{"max_disconnect_effective": {"max_disconnect_effective is set by the manager; leave it out"}}},
		{"hosts not a list", with("allowed_vfolder_hosts", "local"), map[string][]string{"allowed_vfolder_hosts": {"allowed_vfolder_hosts must be a list of folder host names"}}},
		{"hosts bad and twice", with("allowed_vfolder_hosts", []string{"a", "b c", "a", ""}), map[string][]string{"allowed_vfolder_hosts": {
			`host name "b c" must be 1 to 64 letters, digits, '.', '_' or '-'`, "host a is listed twice", `host name "" must be 1 to 64 letters, digits, '.', '_' or '-'`}}},
		{"unknown field", with("colour", "red"), map[string][]string{"colour": {`unknown field "colour"`}}},
		{"a read-only field", with("created_at", "2026-01-01T00:00:00Z"), map[string][]string{"created_at": {"created_at is set by the manager; leave it out"}}},
		{"every violation at once", map[string]any{"name": "x y", "total_resource_slots": map[string]any{"cpu": 1000, "mem": -1},
			"max_containers_per_session": 0, "idle_timeout": -5, "max_concurrent_sessions": 0, "max_vfolder_count": 99, "extra": 1},
			map[string][]string{
				"name":                       {charset},
				"total_resource_slots.cpu":   {"total_resource_slots.cpu must be at most 512 cores"},
				"total_resource_slots.mem":   {"total_resource_slots.mem must not be negative"},
				"max_containers_per_session": {containers},
				"idle_timeout":               {idle},
				"max_concurrent_sessions":    {"max_concurrent_sessions must be from 1 to 100; 0 is not read as unlimited: send null for unlimited"},
				"max_vfolder_count":          {count},
				"extra":                      {`unknown field "extra"`},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := wantProblem(t, admin.do(http.MethodPost, "/v1/resource-policies", tc.body), http.StatusBadRequest, api.ProblemValidation)
			wantFields(t, p, tc.want)
			if n := len(p.Errors); n > 1 && p.Detail != fmt.Sprintf("%d fields are invalid", n) {
				t.Errorf("detail %q should count the %d reasons", p.Detail, n)
			}
		})
	}
	t.Run("the same rules hold for a PATCH", func(t *testing.T) {
		p := wantProblem(t, admin.do(http.MethodPatch, "/v1/resource-policies/default", map[string]any{
			"total_resource_slots": map[string]any{"cuda.device": 65}, "max_vfolder_size": -1}), http.StatusBadRequest, api.ProblemValidation)
		wantFields(t, p, map[string][]string{"total_resource_slots.cuda.device": {"total_resource_slots.cuda.device must be at most 64 GPUs"}, "max_vfolder_size": {size}})
	})
	t.Run("bodies that are not an object", func(t *testing.T) {
		for body, detail := range map[string]string{
			"":        "the request body is empty; send a JSON object",
			"null":    "the request body must be a JSON object, not null",
			"[1]":     "the request body must be a JSON object, not array",
			`{"a":1`:  "the request body is truncated JSON",
			`{} {}`:   "the request body has data after the JSON object",
			`{"name"`: "the request body is truncated JSON",
		} {
			p := wantProblem(t, admin.do(http.MethodPost, "/v1/resource-policies", body), http.StatusBadRequest, api.ProblemValidation)
			wantDetail(t, p, detail)
		}
	})
	t.Run("the maxima themselves are accepted", func(t *testing.T) {
		r := admin.do(http.MethodPost, "/v1/resource-policies", map[string]any{
			"name": "Max_1.0-b", "total_resource_slots": map[string]any{"cpu": 512, "mem": 1024 * gib, "cuda.device": 64, "cuda.shares": 256},
			"max_containers_per_session": 100, "idle_timeout": 15552000, "max_concurrent_sessions": 100, "max_session_lifetime": 0,
			"max_vfolder_size": 1024 * gib, "max_vfolder_count": 50, "allowed_vfolder_hosts": []string{"a", "B.2"},
		})
		wantStatus(t, r, http.StatusCreated)
		wantJSON(t, "slots", wirePolicy(t, r)["total_resource_slots"], `{"cpu":512,"mem":1099511627776,"cuda.device":64,"cuda.shares":256}`)
		r = admin.do(http.MethodPost, "/v1/resource-policies", map[string]any{
			"name": strings.Repeat("z", 64), "total_resource_slots": map[string]any{"cpu": 0, "mem": 0, "cuda.device": 0, "cuda.shares": 0.01},
			"idle_timeout": 0, "max_concurrent_sessions": 1, "max_vfolder_size": 0, "max_vfolder_count": 0, "max_containers_per_session": 1,
		})
		wantStatus(t, r, http.StatusCreated)
		wantJSON(t, "slots", wirePolicy(t, r)["total_resource_slots"], `{"cpu":0,"mem":0,"cuda.device":0,"cuda.shares":0.01}`)
	})
}

// TestResourcePolicyExport checks the CSV columns, unlimited as an empty
// cell, the formula guard and the file name rules.
func TestResourcePolicyExport(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]
	admin := policyClient{t: t, s: s, token: testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)}
	wantStatus(t, admin.do(http.MethodPost, "/v1/resource-policies", map[string]any{
		"name": "-cmd", "total_resource_slots": map[string]any{"cpu": 2.5, "mem": 4 << 30, "cuda.shares": 0.5},
		"max_concurrent_sessions": 3, "max_session_lifetime": 3600, "allowed_vfolder_hosts": []string{"local", "nfs"},
		"max_vfolder_size": 1 << 30, "max_vfolder_count": 7, "idle_timeout": 600, "max_containers_per_session": 2,
		"allow_root": true,
	}), http.StatusCreated)

	r := admin.do(http.MethodGet, "/v1/export/resource-policies.csv", nil)
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := r.Header.Get("Content-Disposition"); cd != `attachment; filename=resource-policies.csv` {
		t.Errorf("Content-Disposition %q", cd)
	}
	want := "name,cpu,mem,cuda.device,cuda.shares,max_containers_per_session,idle_timeout,max_concurrent_sessions," +
		"max_session_lifetime,allowed_vfolder_hosts,max_vfolder_size,max_vfolder_count,allow_root,allowed_images\r\n" +
		"'-cmd,2.5,4294967296,,0.5,2,600,3,3600,local;nfs,1073741824,7,true,\r\n" +
		"default,,,,,100,0,,,,,50,false,\r\n"
	if string(r.Body) != want {
		t.Errorf("export:\n%q\nwant\n%q", r.Body, want)
	}

	names := []struct{ in, want string }{
		{"policies", "policies.csv"},
		{"Policies.CSV", "Policies.CSV"},
		{strings.Repeat("p", 251), strings.Repeat("p", 251) + ".csv"},
	}
	for _, n := range names {
		r := admin.do(http.MethodGet, "/v1/export/resource-policies.csv?filename="+url.QueryEscape(n.in), nil)
		wantStatus(t, r, http.StatusOK)
		if cd := r.Header.Get("Content-Disposition"); !strings.Contains(cd, n.want) {
			t.Errorf("filename %q: Content-Disposition %q, want %q", n.in, cd, n.want)
		}
	}
	bad := []struct{ in, reason string }{
		{strings.Repeat("p", 252), "filename must be at most 255 characters with the .csv that is added (at most 251 before it; it has 252)"},
		{"a/b", `filename must not contain path separators (/ or \)`},
		{"a\x01b", "filename must not contain control characters"},
	}
	for _, b := range bad {
		p := wantProblem(t, admin.do(http.MethodGet, "/v1/export/resource-policies.csv?filename="+url.QueryEscape(b.in), nil), http.StatusBadRequest, api.ProblemValidation)
		wantFields(t, p, map[string][]string{"filename": {b.reason}})
	}
}

// max_disconnect shortens the managers' -disconnect-grace for a policy's
// sessions and never lengthens it: the view says which applies
// (max_disconnect_effective), null goes back to the managers' grace.
func TestPolicyMaxDisconnectTheSmallerWins(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t, func(cfg *server.Config) { cfg.DisconnectGrace = 10 * time.Minute }).Servers[0]
	admin := policyClient{t: t, s: s, token: testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)}
	r := admin.do(http.MethodPost, "/v1/resource-policies", map[string]any{"name": "short", "max_disconnect": 60})
	wantStatus(t, r, http.StatusCreated)
	if m := wirePolicy(t, r); m["max_disconnect"] != float64(60) || m["max_disconnect_effective"] != float64(60) {
		t.Errorf("shorter than the grace: max_disconnect %v, effective %v; want 60 and 60", m["max_disconnect"], m["max_disconnect_effective"])
	}
	r = admin.do(http.MethodPatch, "/v1/resource-policies/short", map[string]any{"max_disconnect": 3600})
	wantStatus(t, r, http.StatusOK)
	if m := wirePolicy(t, r); m["max_disconnect"] != float64(3600) || m["max_disconnect_effective"] != float64(600) {
		t.Errorf("longer than the grace: max_disconnect %v, effective %v; want 3600 and the grace's 600", m["max_disconnect"], m["max_disconnect_effective"])
	}
	r = admin.do(http.MethodPatch, "/v1/resource-policies/short", map[string]any{"max_disconnect": nil})
	wantStatus(t, r, http.StatusOK)
	if m := wirePolicy(t, r); m["max_disconnect"] != nil || m["max_disconnect_effective"] != float64(600) {
		t.Errorf("null: max_disconnect %v, effective %v; want null and 600", m["max_disconnect"], m["max_disconnect_effective"])
	}
	if m := wirePolicy(t, admin.do(http.MethodGet, "/v1/resource-policies/default", nil)); m["max_disconnect"] != nil || m["max_disconnect_effective"] != float64(600) {
		t.Errorf("the default policy: max_disconnect %v, effective %v; want null and 600", m["max_disconnect"], m["max_disconnect_effective"])
	}
}
