package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// TestTheDesiredStateCarriesEachFoldersLimitAsItsPolicySaysNow: every
// folder mount in the agent's desired state carries the folder's
// max_vfolder_size as the policy has it when the agent asks (the agent
// makes it a project quota), so a policy changed while the session runs
// reaches the agent; unlimited is no limit at all. The session record
// does not keep it.
func TestTheDesiredStateCarriesEachFoldersLimitAsItsPolicySaysNow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`,
		func(cfg *server.Config) { cfg.FolderHosts = map[string]string{"local": dir} })
	fe := &folderEnv{t: t, s: e.s, admin: e.admin, host: dir}
	e.capacity.FolderHosts = []string{"local"}
	e.beat()
	tok, _ := fe.user("userb")
	own := fe.createFolder(tok, map[string]any{"name": "work", "host": "local"})
	s := e.mustCreate(tok, oneCPU(map[string]any{"mounts": []string{"work"}}))
	e.place(s.ID, 1)

	limitOf := func() *int64 {
		t.Helper()
		d := e.desired()
		if len(d.Containers) != 1 || len(d.Containers[0].Mounts) != 1 || d.Containers[0].Mounts[0].Folder != own.ID {
			t.Fatalf("desired %+v", d)
		}
		return d.Containers[0].Mounts[0].LimitBytes
	}
	setLimit := func(v any) {
		t.Helper()
		wantStatus(t, testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/default"), e.admin, map[string]any{"max_vfolder_size": v}), http.StatusOK)
	}
	if l := limitOf(); l != nil {
		t.Fatalf("an unlimited policy sends limit %d", *l)
	}
	setLimit(1 << 20)
	if l := limitOf(); l == nil || *l != 1<<20 {
		t.Fatalf("limit %v, want 1 MiB", l)
	}
	setLimit(2 << 20)
	if l := limitOf(); l == nil || *l != 2<<20 {
		t.Fatalf("after the policy changed: limit %v, want 2 MiB", l)
	}
	setLimit(nil)
	if l := limitOf(); l != nil {
		t.Fatalf("after the policy became unlimited: limit %d, want none", *l)
	}
	r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions/"+s.ID), tok, nil)
	wantStatus(t, r, http.StatusOK)
	var raw map[string]json.RawMessage
	r.JSON(t, &raw)
	if want := `[{"folder":"` + own.ID + `","host":"local","target":"/home/work/work","read_only":false}]`; string(raw["mounts"]) != want {
		t.Errorf("the session shows mounts %s, want %s", raw["mounts"], want)
	}
}

// TestTheAgentViewSaysWhichFolderHostsEnforceProjectQuotas: the agent
// reports, per folder host, whether it bounds folders with project quotas;
// GET /v1/agents shows it, an empty list when none does. An agent claiming
// quotas on a host it does not mount is not believed for that host, and a
// registration again (an agent restarted after a remount) replaces the
// list.
func TestTheAgentViewSaysWhichFolderHostsEnforceProjectQuotas(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t, withAgentToken).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)

	in := registration("10.0.0.7:6001")
	in.FolderHosts = []string{"local", "nfs"}
	in.ProjectQuotaHosts = []string{"local", "elsewhere"}
	ag := register(t, s, in)
	if got := getAgent(t, s, admin, ag.ID).ProjectQuotaHosts; !slices.Equal(got, []string{"local"}) {
		t.Errorf("project_quota_hosts %v, want [local]", got)
	}

	plain := register(t, s, registration("10.0.0.8:6001"))
	r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents/"+plain.ID, admin, nil)
	wantStatus(t, r, http.StatusOK)
	var raw map[string]json.RawMessage
	r.JSON(t, &raw)
	if string(raw["project_quota_hosts"]) != "[]" {
		t.Errorf("an agent without project quotas shows project_quota_hosts %s, want []", raw["project_quota_hosts"])
	}

	again := in
	again.ID, again.ProjectQuotaHosts = ag.ID, nil
	wantStatus(t, agentCall(t, s, http.MethodPost, "/v1/agents/register", "", ag.Secret, again), http.StatusOK)
	var list api.List[api.Agent]
	testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents", admin, nil).JSON(t, &list)
	i := slices.IndexFunc(list.Items, func(a api.Agent) bool { return a.ID == ag.ID })
	if i < 0 {
		t.Fatalf("agent %s is not listed", ag.ID)
	}
	if got := list.Items[i].ProjectQuotaHosts; got == nil || len(got) != 0 {
		t.Errorf("after registering again without quotas the list shows %v, want []", got)
	}
}
