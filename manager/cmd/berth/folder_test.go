package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// TestFolderWalkthroughWithTheCLI is the manual's folder section tried as a
// new user would, with two users and one group: the admin makes a
// read-only group folder and uploads into it; B (signing with a keypair)
// sees it with ro without an invitation, downloads, cannot upload; B shares
// a folder of their own with C by invitation; C accepts and writes into it.
func TestFolderWalkthroughWithTheCLI(t *testing.T) {
	hostDir := t.TempDir()
	c := testcluster.StartDev(t, func(cfg *server.Config) { cfg.FolderHosts = map[string]string{"local": hostDir} })
	s := c.Servers[0]
	adminTok := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	admin := map[string]string{"BERTH_ADDR": testcluster.URL(s), "BERTH_TOKEN": adminTok}
	users := map[string]map[string]string{}
	for _, name := range []string{"userb", "userc"} {
		r := testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/users", adminTok, map[string]any{
			"email": name + "@example.com", "username": name, "password": "Passw0rd!", "role": api.RoleUser})
		if r.Status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
		}
		var out struct {
			Keypair api.Keypair `json:"keypair"`
		}
		r.JSON(t, &out)
		users[name] = map[string]string{"BERTH_ADDR": testcluster.URL(s), "BERTH_ACCESS_KEY": out.Keypair.AccessKey, "BERTH_SECRET_KEY": out.Keypair.SecretKey}
	}
	run := func(t *testing.T, env map[string]string, args ...string) string {
		t.Helper()
		res := berth(t, env, "", args...)
		if res.code != 0 {
			t.Fatalf("berth %s: exit %d, stderr %q", strings.Join(args, " "), res.code, res.stderr)
		}
		return res.stdout
	}
	local := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(local, []byte("rows\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	run(t, admin, "group", "create", "research")
	run(t, admin, "group", "add-member", "research", "userb@example.com")
	run(t, admin, "folder", "create", "shared-data", "--host", "local", "--type", "group", "--group", "research", "--permission", "ro")
	run(t, admin, "folder", "upload", "shared-data", local, "data/in.txt")

	var list api.List[api.Folder]
	if err := json.Unmarshal([]byte(run(t, users["userb"], "folder", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "shared-data" || list.Items[0].Permission != "ro" || list.Items[0].Type != "group" {
		t.Fatalf("B lists %+v, want shared-data with ro", list.Items)
	}
	if got := run(t, users["userb"], "folder", "download", "shared-data", "data/in.txt"); got != "rows\n" {
		t.Errorf("B downloads %q", got)
	}
	res := berth(t, users["userb"], "", "folder", "upload", "shared-data", local, "data/mine.txt")
	if res.code == 0 || !strings.Contains(res.stderr, "read-only for you") {
		t.Errorf("B's upload into the ro group folder: exit %d, stderr %q", res.code, res.stderr)
	}
	res = berth(t, users["userb"], "", "folder", "create", "team", "--host", "local", "--type", "group", "--group", "research")
	if res.code == 0 || !strings.Contains(res.stderr, "only admins create group folders") {
		t.Errorf("B creating a group folder: exit %d, stderr %q", res.code, res.stderr)
	}

	run(t, users["userb"], "folder", "create", "mine", "--host", "local")
	run(t, users["userb"], "folder", "invite", "mine", "userc@example.com", "--permission", "rw")
	var invs api.List[api.Invitation]
	if err := json.Unmarshal([]byte(run(t, users["userc"], "folder", "invitations", "-o", "json")), &invs); err != nil {
		t.Fatal(err)
	}
	if len(invs.Items) != 1 || invs.Items[0].State != "pending" || invs.Items[0].FolderName != "mine" {
		t.Fatalf("C's invitations %+v", invs.Items)
	}
	run(t, users["userc"], "folder", "accept", invs.Items[0].ID)
	run(t, users["userc"], "folder", "upload", "mine", local, "from-c.txt")
	out := filepath.Join(t.TempDir(), "got.txt")
	run(t, users["userb"], "folder", "download", "mine", "from-c.txt", "-O", out)
	if b, err := os.ReadFile(out); err != nil || string(b) != "rows\n" {
		t.Errorf("B saved %q, %v", b, err)
	}
	if ls := run(t, users["userb"], "folder", "ls", "mine"); !strings.Contains(ls, "from-c.txt") {
		t.Errorf("ls shows %q", ls)
	}
	if out := run(t, users["userb"], "folder", "mkdir", "mine", "runs/2026"); !strings.Contains(out, "runs/2026") || !strings.Contains(out, "dir") {
		t.Errorf("mkdir printed %q", out)
	}
	if ls := run(t, users["userb"], "folder", "ls", "mine", "runs"); !strings.Contains(ls, "2026") {
		t.Errorf("ls runs shows %q", ls)
	}
	run(t, users["userb"], "folder", "rm", "mine", "from-c.txt")
	run(t, users["userb"], "folder", "delete", "mine")
}
