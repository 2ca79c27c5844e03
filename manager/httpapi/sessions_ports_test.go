package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// Ports are checked at create, every problem at once, and nothing is
// created; good ones are kept on the session, shown in its view and sent
// to its agent with the cluster size and whether it may reach beyond the
// node.
func TestSessionPortsAreCheckedKeptAndSentToTheAgent(t *testing.T) {
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	user := createUser(t, e.s, e.admin, "pat@example.com", "pat", api.RoleUser)
	token := testcluster.Login(t, e.s, user.User.Email, testPassword)
	port := func(name string, n any, proto string) map[string]any {
		return map[string]any{"name": name, "port": n, "protocol": proto}
	}
	many := make([]map[string]any, api.MaxSessionPorts+1)
	for i := range many {
		many[i] = port(fmt.Sprintf("p%d", i), 1000+i, "tcp")
	}
	for _, tc := range []struct {
		name   string
		ports  any
		fields map[string][]string
	}{
		{"out of range, duplicate names, bad protocol", []map[string]any{
			port("web", 0, "http"), port("web", 65536, "tcp"), port("ok", 22, "udp"), port("Bad_Name", 8080.5, "http")},
			map[string][]string{
				"ports[0].port":     {"ports[0].port must be a whole number from 1 to 65535"},
				"ports[1].name":     {`ports[1].name "web" is also the name of ports[0]: names must be unique`},
				"ports[1].port":     {"ports[1].port must be a whole number from 1 to 65535"},
				"ports[2].protocol": {"ports[2].protocol must be http or tcp"},
				"ports[3].name":     {`ports[3].name "Bad_Name" must be 1 to 32 lower-case letters, digits and -, starting with a letter`},
				"ports[3].port":     {"ports[3].port must be a whole number from 1 to 65535"},
			}},
		{"too many", many, map[string][]string{"ports": {fmt.Sprintf("a session declares at most %d ports, not %d", api.MaxSessionPorts, api.MaxSessionPorts+1)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := wantProblem(t, e.create(token, oneCPU(map[string]any{"ports": tc.ports})), http.StatusBadRequest, api.ProblemValidation)
			wantFields(t, p, tc.fields)
		})
	}
	r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions?all=true"), e.admin, nil)
	var l api.List[api.Session]
	r.JSON(t, &l)
	if len(l.Items) != 0 {
		t.Fatalf("refused requests left sessions: %+v", l.Items)
	}

	want := []api.SessionPort{{Name: "jupyter", Port: 8888, Protocol: "http"}, {Name: "ssh", Port: 2200, Protocol: "tcp"}}
	s := e.mustCreate(token, oneCPU(map[string]any{"cluster_size": 2, "ports": []map[string]any{
		port("jupyter", 8888, "http"), port("ssh", 2200, "tcp")}}))
	if !slices.Equal(s.Ports, want) {
		t.Errorf("created with ports %+v", s.Ports)
	}
	e.waitStatus(s.ID, api.SessionScheduled)
	for _, d := range e.desired().Containers {
		if d.SessionID == s.ID && (!slices.Equal(d.Ports, want) || d.ClusterSize != 2 || d.NoEgress) {
			t.Errorf("desired container %s: ports %+v, cluster_size %d, no_egress %v", d.ID, d.Ports, d.ClusterSize, d.NoEgress)
		}
		// An http port's path on the apps origin is in the environment
		// from the start (Jupyter's base_url); a tcp port has none.
		if d.SessionID == s.ID && (d.Env["BERTH_APP_PREFIX_JUPYTER"] != "/s/"+s.ID+"/jupyter/" || d.Env["BERTH_APP_PREFIX_SSH"] != "") {
			t.Errorf("desired container %s: env %v; want BERTH_APP_PREFIX_JUPYTER alone", d.ID, d.Env)
		}
	}
	// The agent's report of a container's address reaches the view.
	e.beat(api.ContainerReport{ID: s.ID + "-0", SessionID: s.ID, Index: 0, Status: "running", Address: "10.88.0.2"},
		api.ContainerReport{ID: s.ID + "-1", SessionID: s.ID, Index: 1, Status: "running", Address: "10.88.0.3"})
	testcluster.Eventually(t, 15*time.Second, func() error {
		got := e.get(token, s.ID)
		if len(got.Containers) != 2 || got.Containers[0].Address != "10.88.0.2" || got.Containers[1].Address != "10.88.0.3" {
			return fmt.Errorf("containers %+v", got.Containers)
		}
		return nil
	})
}

// allow_egress defaults to true, can be set false, and a session created
// under it is sent to its agent with no_egress.
func TestAllowEgressIsAPolicyFieldThatReachesTheAgent(t *testing.T) {
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`)
	var p api.ResourcePolicy
	r := testcluster.Do(t, http.MethodGet, e.url("/v1/resource-policies/default"), e.admin, nil)
	wantStatus(t, r, http.StatusOK)
	r.JSON(t, &p)
	if p.AllowEgress == nil || !*p.AllowEgress {
		t.Fatalf("the default policy shows allow_egress %v, want true", p.AllowEgress)
	}
	r = testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/default"), e.admin, map[string]any{"allow_egress": "no"})
	wantFields(t, wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation), map[string][]string{"allow_egress": {"allow_egress must be true or false"}})
	r = testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/default"), e.admin, map[string]any{"allow_egress": false})
	wantStatus(t, r, http.StatusOK)
	r.JSON(t, &p)
	if p.AllowEgress == nil || *p.AllowEgress {
		t.Fatalf("after the PATCH allow_egress is %v", p.AllowEgress)
	}
	user := createUser(t, e.s, e.admin, "lab@example.com", "lab", api.RoleUser)
	token := testcluster.Login(t, e.s, user.User.Email, testPassword)
	s := e.mustCreate(token, oneCPU(nil))
	e.waitStatus(s.ID, api.SessionScheduled)
	found := false
	for _, d := range e.desired().Containers {
		if d.SessionID == s.ID {
			found = true
			if !d.NoEgress {
				t.Errorf("a session of a policy without egress is sent with no_egress false")
			}
		}
	}
	if !found {
		t.Fatalf("the session is not in its agent's desired state")
	}
}
