package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

var testAgent = api.Agent{
	ID: "agent-abcdefghijkl", Address: "10.0.0.5:6001", Status: api.AgentAlive, Schedulable: true,
	Capacity: slots.Slots{slots.CPU: 7000, slots.Mem: 15 << 30}, Occupied: slots.Slots{},
	Used: api.AgentUsage{CPUSeconds: 3.75, MemoryWorkingSet: 128 << 20, Containers: 2},
	GPUs: []api.AgentGPU{{UUID: "GPU-0", Name: "Fake", MemoryBytes: 16 << 30, SharesTotal: 1, SharesAllocated: 0.5, Fake: true},
		{UUID: "GPU-1", Name: "Fake", MemoryBytes: 16 << 30, SharesTotal: 1}},
	Images:          []api.Image{{Name: "berth/base:latest", Digest: "sha256:aa", Size: 1 << 20}},
	Node:            api.NodeInfo{Hostname: "node-a", Arch: "amd64", Kernel: "6.1.0", CPUs: 8, MemoryBytes: 16 << 30, CgroupVersion: 2},
	LastHeartbeatAt: adminCreated, Version: "0.5.0",
	FolderHosts: []string{"local", "scratch"}, ProjectQuotaHosts: []string{"local"},
}

func TestAgentCommands(t *testing.T) {
	id := testAgent.ID
	notSchedulable := testAgent
	notSchedulable.Schedulable = false
	answers := map[string]adminAnswer{
		"GET /v1/agents":         {http.StatusOK, api.List[api.Agent]{Items: []api.Agent{testAgent}, NextCursor: "agent-z"}},
		"GET /v1/agents/" + id:   {http.StatusOK, testAgent},
		"PATCH /v1/agents/" + id: {http.StatusOK, notSchedulable},
		"GET /v1/images": {http.StatusOK, api.List[api.ClusterImage]{Items: []api.ClusterImage{
			{Image: testAgent.Images[0], Agents: []string{id, "agent-other"}}}}},
	}
	tests := []struct {
		name       string
		args       []string
		want       adminCall
		wantStdout []string
		wantStderr string
	}{
		{
			name: "agent list",
			args: []string{"agent", "list", "--status", "lost", "--limit", "5"},
			want: adminCall{"GET", "/v1/agents", "limit=5&status=LOST", ""},
			wantStdout: []string{"ID", "STATUS", "APPROVED", "SIMULATED", "USED_MEM", id, "ALIVE", "cpu=7 mem=15GiB", "4s", "128MiB",
				"2025-05-06T07:08:09Z"},
			wantStderr: "--cursor agent-z",
		},
		{
			name: "agent get shows the node",
			args: []string{"agent", "get", id},
			want: adminCall{"GET", "/v1/agents/" + id, "", ""},
			wantStdout: []string{"hostname:", "node-a\n", "cgroup_version:", "2\n", "image_names:", "berth/base:latest\n",
				"gpus:", "GPU-0 0.5/1 fake, GPU-1 0/1\n", "folder_hosts:", "local,scratch\n", "project_quota_hosts:", "local\n"},
		},
		{
			name:       "agent schedulable",
			args:       []string{"agent", "schedulable", id, "false"},
			want:       adminCall{"PATCH", "/v1/agents/" + id, "", `{"schedulable":false}`},
			wantStdout: []string{"schedulable:", "false\n"},
		},
		{
			name:       "image list",
			args:       []string{"image", "list"},
			want:       adminCall{"GET", "/v1/images", "", ""},
			wantStdout: []string{"berth/base:latest", "sha256:aa", "1MiB", id + ",agent-other"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAdminFake(t, answers)
			res := berth(t, f.env(), "", tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if got := f.only(t); got != tt.want {
				t.Errorf("sent %+v, want %+v", got, tt.want)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, res.stdout)
				}
			}
			if !strings.Contains(res.stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", res.stderr, tt.wantStderr)
			}
		})
	}
}

func TestAgentListCSVAndJSONKeepWireFigures(t *testing.T) {
	sim := testAgent
	sim.ID, sim.Simulated = "agent-simulated000", true
	f := newAdminFake(t, map[string]adminAnswer{"GET /v1/agents": {http.StatusOK, api.List[api.Agent]{Items: []api.Agent{testAgent, sim}}}})
	res := berth(t, f.env(), "", "agent", "list", "-o", "csv")
	want := "id,status,schedulable,approved,simulated,address,capacity,occupied,used_cpu_seconds,used_mem,containers,images,version,last_heartbeat_at\n" +
		"agent-abcdefghijkl,ALIVE,true,false,false,10.0.0.5:6001,cpu=7 mem=16106127360,,3.75,134217728,2,1,0.5.0,2025-05-06T07:08:09Z\n" +
		"agent-simulated000,ALIVE,true,false,true,10.0.0.5:6001,cpu=7 mem=16106127360,,3.75,134217728,2,1,0.5.0,2025-05-06T07:08:09Z\n"
	if res.code != 0 || res.stdout != want {
		t.Errorf("csv: exit %d\n%s\nwant\n%s", res.code, res.stdout, want)
	}
	res = berth(t, f.env(), "", "agent", "list", "-o", "json")
	var got api.List[api.Agent]
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || len(got.Items) != 2 || got.Items[0].Used != testAgent.Used || !got.Items[1].Simulated {
		t.Errorf("json: %v\n%s", err, res.stdout)
	}
}

func TestAgentSchedulableWantsABoolean(t *testing.T) {
	f := newAdminFake(t, nil)
	res := berth(t, f.env(), "", "agent", "schedulable", testAgent.ID, "maybe")
	if res.code != 1 || !strings.Contains(res.stderr, `schedulable must be true or false, not "maybe"`) || f.count() != 0 {
		t.Fatalf("exit %d, stderr %q, %d requests", res.code, res.stderr, f.count())
	}
}

var testAgentToken = api.AgentToken{ID: "agtok-abcdefghijkl", Status: api.AgentTokenActive, Uses: 2, Used: 1,
	CreatedBy: "admin@berth.local", CreatedAt: adminCreated}

func TestAgentTokenAndApproveCommands(t *testing.T) {
	created := testAgentToken
	created.Token = "berth-agent-SECRETSECRETSECRET"
	created.Used = 0
	expires := adminCreated.Add(24 * time.Hour)
	created.ExpiresAt = &expires
	approved := testAgent
	approved.Approved = true
	answers := map[string]adminAnswer{
		"POST /v1/agents/tokens":                        {http.StatusCreated, created},
		"GET /v1/agents/tokens":                         {http.StatusOK, api.List[api.AgentToken]{Items: []api.AgentToken{testAgentToken}}},
		"DELETE /v1/agents/tokens/" + testAgentToken.ID: {http.StatusNoContent, nil},
		"POST /v1/agents/" + testAgent.ID + "/approve":  {http.StatusOK, approved},
	}
	tests := []struct {
		name       string
		args       []string
		want       adminCall
		wantStdout []string
		wantStderr string
	}{
		{
			name:       "token create with a duration",
			args:       []string{"agent", "token", "create", "--uses", "2", "--ttl", "24h", "--auto-approve"},
			want:       adminCall{"POST", "/v1/agents/tokens", "", `{"uses":2,"ttl":86400,"auto_approve":true}`},
			wantStdout: []string{"token:", "berth-agent-SECRETSECRETSECRET\n", "expires_at:", "2025-05-07T07:08:09Z"},
			wantStderr: "shown only this once",
		},
		{
			name: "token create with seconds and defaults",
			args: []string{"agent", "token", "create", "--ttl", "600"},
			want: adminCall{"POST", "/v1/agents/tokens", "", `{"ttl":600}`},
		},
		{
			name:       "token list",
			args:       []string{"agent", "token", "list"},
			want:       adminCall{"GET", "/v1/agents/tokens", "", ""},
			wantStdout: []string{"ID", "STATUS", "EXPIRES_AT", testAgentToken.ID, "active", "never", "admin@berth.local"},
		},
		{
			name:       "token revoke",
			args:       []string{"agent", "token", "revoke", testAgentToken.ID},
			want:       adminCall{"DELETE", "/v1/agents/tokens/" + testAgentToken.ID, "", ""},
			wantStdout: []string{"Revoked agent token " + testAgentToken.ID},
		},
		{
			name:       "approve",
			args:       []string{"agent", "approve", testAgent.ID},
			want:       adminCall{"POST", "/v1/agents/" + testAgent.ID + "/approve", "", ""},
			wantStdout: []string{"approved:", "true\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAdminFake(t, answers)
			res := berth(t, f.env(), "", tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if got := f.only(t); got != tt.want {
				t.Errorf("sent %+v, want %+v", got, tt.want)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, res.stdout)
				}
			}
			if !strings.Contains(res.stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", res.stderr, tt.wantStderr)
			}
		})
	}
}

func TestAgentTokenCreateRefusesABadTTL(t *testing.T) {
	f := newAdminFake(t, nil)
	res := berth(t, f.env(), "", "agent", "token", "create", "--ttl", "tomorrow")
	if res.code != 1 || !strings.Contains(res.stderr, `--ttl: "tomorrow" is not a whole number of seconds or a duration`) || f.count() != 0 {
		t.Fatalf("exit %d, stderr %q, %d requests", res.code, res.stderr, f.count())
	}
}
