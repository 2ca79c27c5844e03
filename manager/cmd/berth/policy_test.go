package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// policyFake answers every request with a fixed policy and records the
// method, path and body of the last one.
type policyFake struct {
	*fakeManager
	mu                 sync.Mutex
	method, path, body string
}

func newPolicyFake(t *testing.T) *policyFake {
	f := &policyFake{}
	f.fakeManager = newFakeManager(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.method, f.path, f.body = r.Method, r.URL.Path, string(b)
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, api.ResourcePolicy{Name: "p", AllowedVfolderHosts: []string{}})
	})
	return f
}

func (f *policyFake) lastCall() (method, path, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.method, f.path, f.body
}

func TestPolicyFlagsSendOnlyWhatIsGiven(t *testing.T) {
	f := newPolicyFake(t)
	env := map[string]string{"BERTH_ADDR": f.URL, "BERTH_TOKEN": "tok"}
	tests := []struct {
		name       string
		args       []string
		wantMethod string
		wantPath   string
		wantBody   string
	}{
		{"create with a name only", []string{"policy", "create", "bare"}, "POST", "/v1/resource-policies", `{"name":"bare"}`},
		{"create with every flag",
			[]string{"policy", "create", "lab", "--cpu", "2.5", "--mem", "4GiB", "--cuda-device", "unlimited", "--cuda-shares", "0.1",
				"--max-containers-per-session", "2", "--idle-timeout", "30m", "--max-concurrent-sessions", "unlimited",
				"--max-session-lifetime", "86400", "--allowed-vfolder-hosts", "local, nfs", "--max-vfolder-size", "100GiB",
				"--max-vfolder-count", "5"},
			"POST", "/v1/resource-policies",
			`{"allowed_vfolder_hosts":["local","nfs"],"idle_timeout":1800,"max_concurrent_sessions":null,"max_containers_per_session":2,` +
				`"max_session_lifetime":86400,"max_vfolder_count":5,"max_vfolder_size":107374182400,"name":"lab",` +
				`"total_resource_slots":{"cpu":2.5,"cuda.device":null,"cuda.shares":0.1,"mem":4294967296}}`},
		{"update sends only the flags given", []string{"policy", "update", "default", "--cpu", "2", "--mem", "4294967296", "--cuda-shares", "1"},
			"PATCH", "/v1/resource-policies/default", `{"total_resource_slots":{"cpu":2,"cuda.shares":1,"mem":4294967296}}`},
		{"update to unlimited sends null", []string{"policy", "update", "lab", "--mem", "unlimited", "--max-session-lifetime", "unlimited", "--max-vfolder-size", "unlimited"},
			"PATCH", "/v1/resource-policies/lab", `{"max_session_lifetime":null,"max_vfolder_size":null,"total_resource_slots":{"mem":null}}`},
		{"max_disconnect as a duration", []string{"policy", "update", "lab", "--max-disconnect", "10m"},
			"PATCH", "/v1/resource-policies/lab", `{"max_disconnect":600}`},
		{"max_disconnect unlimited is the managers' grace (null)", []string{"policy", "update", "lab", "--max-disconnect", "unlimited"},
			"PATCH", "/v1/resource-policies/lab", `{"max_disconnect":null}`},
		{"an empty host list clears it", []string{"policy", "update", "lab", "--allowed-vfolder-hosts", ""},
			"PATCH", "/v1/resource-policies/lab", `{"allowed_vfolder_hosts":[]}`},
		{"range checks are the manager's", []string{"policy", "update", "lab", "--cpu", "-1", "--max-vfolder-count", "99"},
			"PATCH", "/v1/resource-policies/lab", `{"max_vfolder_count":99,"total_resource_slots":{"cpu":-1}}`},
		{"get", []string{"policy", "get", "a.b"}, "GET", "/v1/resource-policies/a.b", ``},
		{"delete", []string{"policy", "delete", "lab"}, "DELETE", "/v1/resource-policies/lab", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := berth(t, env, "", tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			method, path, body := f.lastCall()
			if method != tt.wantMethod || path != tt.wantPath {
				t.Fatalf("request %s %s, want %s %s", method, path, tt.wantMethod, tt.wantPath)
			}
			if body != "" {
				// Re-encode through a map so the comparison is in key order.
				var m map[string]any
				if err := json.Unmarshal([]byte(body), &m); err != nil {
					t.Fatalf("body %s: %v", body, err)
				}
				b, _ := json.Marshal(m)
				body = string(b)
			}
			if body != tt.wantBody {
				t.Errorf("body %s\nwant %s", body, tt.wantBody)
			}
		})
	}
}

func TestPolicyFlagsThatCannotBeSentAreAllReported(t *testing.T) {
	f := newPolicyFake(t)
	env := map[string]string{"BERTH_ADDR": f.URL, "BERTH_TOKEN": "tok"}
	res := berth(t, env, "", "policy", "create", "p", "--cpu", "two", "--mem", "4 lots", "--idle-timeout", "1.5s",
		"--max-concurrent-sessions", "many", "--max-vfolder-count", "1.5")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1", res.code)
	}
	for _, want := range []string{
		`--cpu: "two" is not a number or unlimited`,
		`--mem: size "4 lots" must be a number of bytes, optionally with a suffix KiB, MiB, GiB or TiB (for example 4GiB)`,
		`--idle-timeout: "1.5s" is not a whole number of seconds or a duration such as 90m`,
		`--max-concurrent-sessions: "many" is not a whole number or unlimited`,
		`--max-vfolder-count: "1.5" is not a whole number`,
	} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr %q does not say %q", res.stderr, want)
		}
	}
	if m, _, _ := f.lastCall(); m != "" {
		t.Errorf("a request was sent (%s) although the flags were wrong", m)
	}
	res = berth(t, env, "", "policy", "update", "p")
	if res.code != 1 || !strings.Contains(res.stderr, "nothing to change: give at least one flag") {
		t.Errorf("update without flags: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestPolicyWalkthroughWithTheCLI is the manual's walkthrough with the
// CLI against a real manager: the default policy is unlimited, the admin
// sets 2 CPU, 4 GiB and 1 fGPU, the indicator shows the limits.
func TestPolicyWalkthroughWithTheCLI(t *testing.T) {
	c := testcluster.StartDev(t)
	s := c.Servers[0]
	env := map[string]string{"BERTH_ADDR": testcluster.URL(s), "BERTH_TOKEN": testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		res := berth(t, env, "", args...)
		if res.code != 0 {
			t.Fatalf("berth %s: exit %d, stderr %q", strings.Join(args, " "), res.code, res.stderr)
		}
		return res.stdout
	}

	t.Run("default starts unlimited", func(t *testing.T) {
		var ind api.ResourceIndicator
		if err := json.Unmarshal([]byte(run(t, "resources", "-o", "json")), &ind); err != nil {
			t.Fatal(err)
		}
		if ind.ResourcePolicy != "default" || len(ind.Limits) != 0 {
			t.Fatalf("indicator on %s with limits %v, want default with none", ind.ResourcePolicy, ind.Limits)
		}
	})

	t.Run("set 2 CPU, 4 GiB, 1 fGPU and the indicator shows them", func(t *testing.T) {
		out := run(t, "policy", "update", "default", "--cpu", "2", "--mem", "4GiB", "--cuda-shares", "1")
		for _, want := range []string{"cpu:                         2\n", "mem:                         4GiB\n", "cuda.shares:                 1\n",
			"cuda.device:                 ∞\n", "idle_timeout:                never\n", "max_session_lifetime:        ∞\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("update output does not show %q:\n%s", want, out)
			}
		}
		out = run(t, "resources")
		want := "SLOT         LIMIT  OCCUPIED  REMAINING  CLUSTER_TOTAL  CLUSTER_FREE  LARGEST_AGENT_FREE  ALLOCATABLE\n" +
			"cpu          2      0         2          0              0             0                   0\n" +
			"mem          4GiB   0B        4GiB       0B             0B            0B                  0B\n" +
			"cuda.device  ∞      0         ∞          0              0             0                   0\n" +
			"cuda.shares  1      0         1          0              0             0                   0\n"
		if !strings.HasSuffix(out, want) || !strings.HasPrefix(out, "Keypair ") || !strings.Contains(out, "policy default, concurrent sessions 0 of ∞") {
			t.Errorf("resources:\n%s\nwant a header line and\n%s", out, want)
		}
		csv := run(t, "resources", "-o", "csv")
		if !strings.Contains(csv, "mem,4294967296,0,4294967296,0,0,0,0\n") {
			t.Errorf("csv keeps bytes:\n%s", csv)
		}
	})

	t.Run("create, export, delete", func(t *testing.T) {
		// A name may start with '-' (after "--" on the command line); the
		// export defuses it as a formula.
		run(t, "policy", "create", "--cpu", "8", "--allowed-vfolder-hosts", "a,b", "--allow-root", "--", "-lab")
		path := filepath.Join(t.TempDir(), "p.csv")
		run(t, "export", "resource-policies", "--filename", "mine", "-O", path)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := "name,cpu,mem,cuda.device,cuda.shares,max_containers_per_session,idle_timeout,max_concurrent_sessions," +
			"max_session_lifetime,allowed_vfolder_hosts,max_vfolder_size,max_vfolder_count,allow_root,allowed_images\r\n" +
			"'-lab,8,,,,1,0,,,a;b,,10,true,\r\n" +
			"default,2,4294967296,,1,100,0,,,,,50,false,\r\n"
		if string(got) != want {
			t.Errorf("export %q\nwant   %q", got, want)
		}
		if out := run(t, "policy", "list", "-o", "csv"); !strings.Contains(out, "'-lab,8,,,,1,0,,,a;b,,10,true,\n") {
			t.Errorf("list -o csv has the export's cells:\n%s", out)
		}
		run(t, "policy", "update", "--allow-root=false", "--", "-lab")
		if out := run(t, "policy", "list", "-o", "csv"); !strings.Contains(out, "'-lab,8,,,,1,0,,,a;b,,10,false,\n") {
			t.Errorf("after --allow-root=false:\n%s", out)
		}
		run(t, "policy", "update", "--allow-egress=false", "--", "-lab")
		if out := run(t, "policy", "get", "-o", "json", "--", "-lab"); !strings.Contains(out, `"allow_egress": false`) {
			t.Errorf("after --allow-egress=false:\n%s", out)
		}
		if out := run(t, "policy", "delete", "--", "-lab"); out != "Deleted resource policy -lab\n" {
			t.Errorf("delete printed %q", out)
		}
		res := berth(t, env, "", "policy", "delete", "default")
		if res.code != 1 || !strings.Contains(res.stderr, "Error: Conflict (409)") || !strings.Contains(res.stderr, "the default policy cannot be deleted") {
			t.Errorf("deleting default: exit %d, stderr %q", res.code, res.stderr)
		}
		res = berth(t, env, "", "policy", "create", "x y", "--cpu", "600")
		for _, want := range []string{"name: name may contain only letters", "total_resource_slots.cpu: total_resource_slots.cpu must be at most 512 cores"} {
			if res.code != 1 || !strings.Contains(res.stderr, want) {
				t.Errorf("invalid create: exit %d, stderr %q lacks %q", res.code, res.stderr, want)
			}
		}
	})
}
