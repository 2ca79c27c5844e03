package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// TestSessionsMountFoldersWithTheCallersPermission: mounts name folders by
// name or id; each lands at /home/work/NAME, read-only unless the caller
// may write; the agent is told the host and folder id; folders the caller
// cannot see are refused; a mounted folder cannot be deleted until the
// session ends.
func TestSessionsMountFoldersWithTheCallersPermission(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`,
		func(cfg *server.Config) { cfg.FolderHosts = map[string]string{"local": dir} })
	fe := &folderEnv{t: t, s: e.s, admin: e.admin, host: dir}
	e.capacity.FolderHosts = []string{"local"} // the agent mounts the host too
	e.beat()
	bTok, b := fe.user("userb")
	cTok, _ := fe.user("userc")
	fe.members("default", []string{b.User.Email}, nil)
	group := fe.createFolder(e.admin, map[string]any{"name": "shared-data", "host": "local", "type": "group", "group": "default", "permission": "ro"})
	own := fe.createFolder(bTok, map[string]any{"name": "work", "host": "local"})
	cs := fe.createFolder(cTok, map[string]any{"name": "private", "host": "local"})

	r := e.create(bTok, oneCPU(map[string]any{"mounts": []string{"private", cs.ID, "work", "work"}}))
	p := wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"mounts": {
		"no folder private that you can see; list yours with GET /v1/folders",
		"no folder " + cs.ID + " that you can see; list yours with GET /v1/folders",
		"folder work is named twice",
	}})

	s := e.mustCreate(bTok, oneCPU(map[string]any{"mounts": []string{"shared-data", own.ID}}))
	want := []api.SessionMount{
		{Folder: group.ID, Host: "local", Target: "/home/work/shared-data", ReadOnly: true},
		{Folder: own.ID, Host: "local", Target: "/home/work/work", ReadOnly: false},
	}
	if !slices.Equal(s.Mounts, want) {
		t.Fatalf("session mounts %+v, want %+v", s.Mounts, want)
	}
	e.place(s.ID, 1)
	d := e.desired()
	if len(d.Containers) != 1 {
		t.Fatalf("desired %+v", d)
	}
	wantWire := []api.Mount{
		{Host: "local", Folder: group.ID, Target: "/home/work/shared-data", ReadOnly: true},
		{Host: "local", Folder: own.ID, Target: "/home/work/work", ReadOnly: false},
	}
	if !slices.Equal(d.Containers[0].Mounts, wantWire) {
		t.Errorf("the agent is told mounts %+v, want %+v", d.Containers[0].Mounts, wantWire)
	}

	r = testcluster.Do(t, http.MethodDelete, e.url("/v1/folders/"+own.ID), bTok, nil)
	p = wantProblem(t, r, http.StatusConflict, api.ProblemConflict)
	wantDetail(t, p, "folder work is mounted by session "+s.ID)
	r = testcluster.Do(t, http.MethodDelete, e.url("/v1/folders/"+group.ID), e.admin, nil)
	wantProblem(t, r, http.StatusConflict, api.ProblemConflict)

	// Over its size limit, the folder is mounted read-only in new sessions.
	wantStatus(t, testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/default"), e.admin, map[string]any{"max_vfolder_size": 4}), http.StatusOK)
	resp, err := e.s.Propose(context.Background(), fsm.FoldersUsage{Usage: []fsm.FolderUsage{{ID: own.ID, Bytes: 5}}})
	if err != nil || resp.Err != nil {
		t.Fatalf("record usage: %v %v", err, resp)
	}
	over := e.mustCreate(bTok, oneCPU(map[string]any{"mounts": []string{"work"}}))
	if len(over.Mounts) != 1 || !over.Mounts[0].ReadOnly {
		t.Errorf("an over-quota folder mounts as %+v, want read-only", over.Mounts)
	}
	e.terminate(t, bTok, over.ID)

	e.terminate(t, bTok, s.ID)
	e.beat()
	e.waitStatus(s.ID, api.SessionTerminated)
	wantStatus(t, testcluster.Do(t, http.MethodDelete, e.url("/v1/folders/"+own.ID), bTok, nil), http.StatusNoContent)
	wantStatus(t, testcluster.Do(t, http.MethodDelete, e.url("/v1/folders/"+group.ID), e.admin, nil), http.StatusNoContent)
}

// A session mounting a folder whose host no agent has is refused at once
// saying which host; once an agent reports the host it is accepted and
// placed there.
func TestASessionNeedsAnAgentWithItsFolderHost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newSessionEnv(t, "10.0.0.5:6001", `{"cpu":4,"mem":8589934592}`, `{"cpu":4,"mem":8589934592}`,
		func(cfg *server.Config) { cfg.FolderHosts = map[string]string{"local": dir} })
	fe := &folderEnv{t: t, s: e.s, admin: e.admin, host: dir}
	tok, _ := fe.user("userb")
	fe.createFolder(tok, map[string]any{"name": "work", "host": "local"})

	p := wantProblem(t, e.create(tok, oneCPU(map[string]any{"mounts": []string{"work"}})), http.StatusUnprocessableEntity, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"mounts": {"no ALIVE, schedulable agent has the folder host local: start an agent with -folder-host local=PATH"}})

	e.capacity.FolderHosts = []string{"local"}
	e.beat()
	s := e.mustCreate(tok, oneCPU(map[string]any{"mounts": []string{"work"}}))
	if got := e.waitStatus(s.ID, api.SessionScheduled); got.Containers[0].Agent != e.agent.ID {
		t.Fatalf("placed on %s", got.Containers[0].Agent)
	}
	var ag api.Agent
	testcluster.Do(t, http.MethodGet, e.url("/v1/agents/"+e.agent.ID), e.admin, nil).JSON(t, &ag)
	if len(ag.FolderHosts) != 1 || ag.FolderHosts[0] != "local" {
		t.Errorf("the agent view shows folder hosts %v", ag.FolderHosts)
	}
}
