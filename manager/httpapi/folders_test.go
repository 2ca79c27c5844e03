package httpapi_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// folderEnv is a manager (on a fake cluster) with one folder host "local"
// that the default policy allows, and an admin.
type folderEnv struct {
	t     *testing.T
	s     *server.Server
	admin string
	host  string // the host's directory
}

func withFolderHost(dir string) func(*server.Config) {
	return func(cfg *server.Config) { cfg.FolderHosts = map[string]string{"local": dir} }
}

func newFolderEnv(t *testing.T, tweak ...func(*server.Config)) *folderEnv {
	t.Helper()
	dir := t.TempDir()
	s := testcluster.StartFake(t, append([]func(*server.Config){withFolderHost(dir)}, tweak...)...).Servers[0]
	return &folderEnv{t: t, s: s, admin: testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword), host: dir}
}

func (e *folderEnv) url(path string) string { return testcluster.URL(e.s) + path }

func (e *folderEnv) do(method, path, token string, body any) *testcluster.Response {
	e.t.Helper()
	return testcluster.Do(e.t, method, e.url(path), token, body)
}

// user creates a user and logs them in.
func (e *folderEnv) user(name string) (string, createdUser) {
	e.t.Helper()
	u := createUser(e.t, e.s, e.admin, name+"@example.com", name, api.RoleUser)
	return testcluster.Login(e.t, e.s, u.User.Email, testPassword), u
}

func (e *folderEnv) createFolder(token string, body map[string]any) api.Folder {
	e.t.Helper()
	r := e.do(http.MethodPost, "/v1/folders", token, body)
	wantStatus(e.t, r, http.StatusCreated)
	var f api.Folder
	r.JSON(e.t, &f)
	return f
}

// folders lists what the token's user sees, by name.
func (e *folderEnv) folders(token string) map[string]api.Folder {
	e.t.Helper()
	r := e.do(http.MethodGet, "/v1/folders", token, nil)
	wantStatus(e.t, r, http.StatusOK)
	var l api.List[api.Folder]
	r.JSON(e.t, &l)
	out := map[string]api.Folder{}
	for _, f := range l.Items {
		out[f.Name] = f
	}
	return out
}

// put uploads raw bytes with a login token.
func (e *folderEnv) put(token, folder, path, content string) *testcluster.Response {
	e.t.Helper()
	req := newRequest(e.t, http.MethodPut, e.url("/v1/folders/"+folder+"/files/"+path), []byte(content))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	return send(e.t, req)
}

func (e *folderEnv) get(token, folder, path string) *testcluster.Response {
	e.t.Helper()
	req := newRequest(e.t, http.MethodGet, e.url("/v1/folders/"+folder+"/files/"+path), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return send(e.t, req)
}

func (e *folderEnv) members(group string, add, remove []string) {
	e.t.Helper()
	r := e.do(http.MethodPost, "/v1/domains/default/groups/"+group+"/members", e.admin, map[string]any{"add": add, "remove": remove})
	wantStatus(e.t, r, http.StatusOK)
}

// TestGroupFolderWalkthrough is the manual's "Sharing a group storage
// folder with group members": an admin creates a read-only group folder for
// user B's group; B sees it with R at once, without an invitation, and
// cannot write into it; a user added to the group later sees it, one
// removed loses it.
func TestGroupFolderWalkthrough(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	r := e.do(http.MethodPost, "/v1/domains/default/groups", e.admin, map[string]any{"name": "research"})
	wantStatus(t, r, http.StatusCreated)
	bTok, b := e.user("userb")
	cTok, c := e.user("userc")
	e.members("research", []string{b.User.Email}, nil)

	r = e.do(http.MethodPost, "/v1/folders", bTok, map[string]any{"name": "mine", "host": "local", "type": "group", "group": "research"})
	p := wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)
	wantDetail(t, p, "only admins create group folders")

	f := e.createFolder(e.admin, map[string]any{"name": "shared-data", "host": "local", "type": "group", "group": "research", "permission": "ro"})
	if f.Type != "group" || f.Group != "research" || f.Permission != "wd" || f.Host != "local" {
		t.Fatalf("created %+v, want a group folder of research that its creator may manage (wd)", f)
	}
	if st, err := os.Stat(filepath.Join(e.host, f.ID)); err != nil || !st.IsDir() {
		t.Fatalf("the folder's directory %s/%s: %v", e.host, f.ID, err)
	}
	wantStatus(t, e.put(e.admin, f.ID, "data/train.csv", "a,b\n1,2\n"), http.StatusCreated)

	seen, ok := e.folders(bTok)["shared-data"]
	if !ok {
		t.Fatalf("B does not see the group folder without an invitation: %v", e.folders(bTok))
	}
	if seen.Permission != "ro" || seen.Type != "group" || seen.ID != f.ID {
		t.Errorf("B sees %+v, want the group folder with permission ro", seen)
	}
	r = e.do(http.MethodGet, "/v1/invitations", bTok, nil)
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"items":[]`) {
		t.Errorf("B has invitations %s, want none", r.Body)
	}
	got := e.get(bTok, "shared-data", "data/train.csv")
	wantStatus(t, got, http.StatusOK)
	if string(got.Body) != "a,b\n1,2\n" {
		t.Errorf("B downloads %q", got.Body)
	}
	p = wantProblem(t, e.put(bTok, f.ID, "data/mine.txt", "x"), http.StatusForbidden, api.ProblemForbidden)
	wantDetail(t, p, "read-only for you")
	r = e.do(http.MethodDelete, "/v1/folders/"+f.ID+"/files/data/train.csv", bTok, nil)
	wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)
	r = e.do(http.MethodDelete, "/v1/folders/"+f.ID, bTok, nil)
	wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)

	if _, ok := e.folders(cTok)["shared-data"]; ok {
		t.Fatal("C, outside the group, sees the group folder")
	}
	wantProblem(t, e.get(cTok, f.ID, "data/train.csv"), http.StatusNotFound, api.ProblemNotFound)
	e.members("research", []string{c.User.Email}, nil)
	if got := e.folders(cTok)["shared-data"]; got.Permission != "ro" {
		t.Errorf("C added to the group sees %+v, want it with ro", got)
	}
	e.members("research", nil, []string{b.User.Email})
	if _, ok := e.folders(bTok)["shared-data"]; ok {
		t.Error("B removed from the group still sees the group folder")
	}
}

func TestGroupFoldersCanBeDisabled(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t, func(cfg *server.Config) { cfg.NoGroupFolders = true })
	r := e.do(http.MethodPost, "/v1/folders", e.admin, map[string]any{"name": "g", "host": "local", "type": "group", "group": "default"})
	p := wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)
	wantDetail(t, p, "group folders are disabled on this cluster", "-allow-group-folders=false")
	e.createFolder(e.admin, map[string]any{"name": "u", "host": "local"})
}

func TestFolderCreateIsChecked(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	tok, _ := e.user("ann")
	r := e.do(http.MethodPost, "/v1/folders", tok, map[string]any{"name": "../x", "type": "team", "group": "g"})
	p := wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
	wantFields(t, p, map[string][]string{
		"name": {"name " + "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"},
		"host": {"host is required: one of GET /v1/folder-hosts"},
		"type": {"type must be user or group"},
	})
	r = e.do(http.MethodPost, "/v1/folders", tok, map[string]any{"name": "x", "host": "nfs1"})
	p = wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)
	wantDetail(t, p, "folder host nfs1 is not in allowed_vfolder_hosts of resource policy default")

	// Allowed by the policy but not configured on this manager.
	wantStatus(t, e.do(http.MethodPatch, "/v1/resource-policies/default", e.admin, map[string]any{"allowed_vfolder_hosts": []string{"local", "nfs1"}}), http.StatusOK)
	r = e.do(http.MethodPost, "/v1/folders", tok, map[string]any{"name": "x", "host": "nfs1"})
	p = wantProblem(t, r, http.StatusConflict, api.ProblemConflict)
	wantDetail(t, p, "folder host nfs1 is not configured on this manager (-folder-host nfs1=PATH)")
	r = e.do(http.MethodGet, "/v1/folder-hosts", tok, nil)
	wantStatus(t, r, http.StatusOK)
	if want := `{"items":[{"name":"local","available":true},{"name":"nfs1","available":false}]`; !strings.HasPrefix(string(r.Body), want) {
		t.Errorf("folder hosts %s, want %s", r.Body, want)
	}
	e.createFolder(tok, map[string]any{"name": "x", "host": "local"})
	r = e.do(http.MethodPost, "/v1/folders", tok, map[string]any{"name": "x", "host": "local"})
	p = wantProblem(t, r, http.StatusConflict, api.ProblemConflict)
	wantDetail(t, p, "you already have a folder named x")
}

func TestInvitationFlow(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	aTok, _ := e.user("alice")
	bTok, b := e.user("bob")
	f := e.createFolder(aTok, map[string]any{"name": "models", "host": "local"})
	if f.Permission != "wd" || f.Type != "user" {
		t.Fatalf("owner sees %+v, want a user folder with wd", f)
	}
	wantStatus(t, e.put(aTok, f.ID, "m.bin", "weights"), http.StatusCreated)

	r := e.do(http.MethodPost, "/v1/folders/"+f.ID+"/invitations", bTok, map[string]any{"invitee": "alice@example.com", "permission": "rw"})
	wantProblem(t, r, http.StatusNotFound, api.ProblemNotFound) // bob cannot even see it
	r = e.do(http.MethodPost, "/v1/folders/"+f.ID+"/invitations", aTok, map[string]any{"invitee": b.User.Email, "permission": "wd"})
	wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)

	invite := func(perm string) api.Invitation {
		r := e.do(http.MethodPost, "/v1/folders/"+f.ID+"/invitations", aTok, map[string]any{"invitee": b.User.Email, "permission": perm})
		wantStatus(t, r, http.StatusCreated)
		var inv api.Invitation
		r.JSON(t, &inv)
		return inv
	}
	inv := invite("ro")
	if inv.State != "pending" || inv.FolderName != "models" || inv.Invitee != b.User.Email {
		t.Fatalf("invitation %+v", inv)
	}
	r = e.do(http.MethodPost, "/v1/folders/"+f.ID+"/invitations", aTok, map[string]any{"invitee": b.User.Email, "permission": "rw"})
	wantProblem(t, r, http.StatusConflict, api.ProblemConflict)
	if _, ok := e.folders(bTok)["models"]; ok {
		t.Fatal("bob sees the folder before accepting")
	}
	r = e.do(http.MethodGet, "/v1/invitations", bTok, nil)
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), inv.ID) {
		t.Errorf("bob's invitations %s do not list %s", r.Body, inv.ID)
	}
	r = e.do(http.MethodPost, "/v1/invitations/"+inv.ID+"/accept", aTok, nil)
	wantProblem(t, r, http.StatusNotFound, api.ProblemNotFound) // only the invitee answers
	r = e.do(http.MethodPost, "/v1/invitations/"+inv.ID+"/accept", bTok, nil)
	wantStatus(t, r, http.StatusOK)
	if got := e.folders(bTok)["models"]; got.Permission != "ro" || got.Owner != "alice@example.com" {
		t.Errorf("bob sees %+v, want the shared folder with ro", got)
	}
	if got := e.get(bTok, "models", "m.bin"); got.Status != http.StatusOK || string(got.Body) != "weights" {
		t.Errorf("bob downloads %d %q", got.Status, got.Body)
	}
	wantProblem(t, e.put(bTok, f.ID, "x", "y"), http.StatusForbidden, api.ProblemForbidden)

	// Revoked: bob loses it; invited again with rw and accepted: bob writes.
	wantStatus(t, e.do(http.MethodDelete, "/v1/invitations/"+inv.ID, aTok, nil), http.StatusNoContent)
	if _, ok := e.folders(bTok)["models"]; ok {
		t.Fatal("bob still sees the folder after the owner revoked the invitation")
	}
	inv = invite("rw")
	wantStatus(t, e.do(http.MethodPost, "/v1/invitations/"+inv.ID+"/accept", bTok, nil), http.StatusOK)
	wantStatus(t, e.put(bTok, f.ID, "out/result.txt", "42"), http.StatusCreated)
	if got := e.get(aTok, f.ID, "out/result.txt"); string(got.Body) != "42" {
		t.Errorf("owner reads %q of what bob wrote", got.Body)
	}
	r = e.do(http.MethodDelete, "/v1/folders/"+f.ID, bTok, nil)
	wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)

	// A rejected invitation shows nothing.
	g := e.createFolder(aTok, map[string]any{"name": "other", "host": "local"})
	r = e.do(http.MethodPost, "/v1/folders/"+g.ID+"/invitations", aTok, map[string]any{"invitee": b.User.Email, "permission": "rw"})
	wantStatus(t, r, http.StatusCreated)
	r.JSON(t, &inv)
	r = e.do(http.MethodPost, "/v1/invitations/"+inv.ID+"/reject", bTok, nil)
	wantStatus(t, r, http.StatusOK)
	r.JSON(t, &inv)
	if inv.State != "rejected" {
		t.Errorf("state %s after reject", inv.State)
	}
	if _, ok := e.folders(bTok)["other"]; ok {
		t.Error("bob sees a folder whose invitation he rejected")
	}

	wantStatus(t, e.do(http.MethodDelete, "/v1/folders/"+f.ID, aTok, nil), http.StatusNoContent)
	if _, err := os.Stat(filepath.Join(e.host, f.ID)); !os.IsNotExist(err) {
		t.Errorf("the deleted folder's directory is still there: %v", err)
	}
	if _, ok := e.folders(bTok)["models"]; ok {
		t.Error("bob still sees a deleted folder")
	}
}

func TestFolderCountLimitCountsCreatedAndInvited(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	r := e.do(http.MethodPost, "/v1/resource-policies", e.admin, map[string]any{"name": "small", "allowed_vfolder_hosts": []string{"local"}, "max_vfolder_count": 1})
	wantStatus(t, r, http.StatusCreated)
	aTok, _ := e.user("alice")
	bTok, b := e.user("bob")
	r = e.do(http.MethodPatch, "/v1/keypairs/"+b.Keypair.AccessKey, e.admin, map[string]any{"resource_policy": "small"})
	wantStatus(t, r, http.StatusOK)

	e.createFolder(bTok, map[string]any{"name": "one", "host": "local"})
	r = e.do(http.MethodPost, "/v1/folders", bTok, map[string]any{"name": "two", "host": "local"})
	p := wantProblem(t, r, http.StatusConflict, api.ProblemConflict)
	wantDetail(t, p, "max_vfolder_count of resource policy small is 1", "bob@example.com has 1 storage folders")

	// An accepted invitation counts too.
	f := e.createFolder(aTok, map[string]any{"name": "shared", "host": "local"})
	r = e.do(http.MethodPost, "/v1/folders/"+f.ID+"/invitations", aTok, map[string]any{"invitee": b.User.Email, "permission": "ro"})
	wantStatus(t, r, http.StatusCreated)
	var inv api.Invitation
	r.JSON(t, &inv)
	r = e.do(http.MethodPost, "/v1/invitations/"+inv.ID+"/accept", bTok, nil)
	p = wantProblem(t, r, http.StatusConflict, api.ProblemConflict)
	wantDetail(t, p, "max_vfolder_count")
	wantStatus(t, e.do(http.MethodDelete, "/v1/folders/one", bTok, nil), http.StatusNoContent)
	wantStatus(t, e.do(http.MethodPost, "/v1/invitations/"+inv.ID+"/accept", bTok, nil), http.StatusOK)
	r = e.do(http.MethodPost, "/v1/folders", bTok, map[string]any{"name": "three", "host": "local"})
	wantProblem(t, r, http.StatusConflict, api.ProblemConflict)
}

func TestFolderSizeLimitRefusesUploadsPastIt(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t, func(cfg *server.Config) { cfg.FolderUsageEvery = 200 * time.Millisecond })
	r := e.do(http.MethodPatch, "/v1/resource-policies/default", e.admin, map[string]any{"max_vfolder_size": 10})
	wantStatus(t, r, http.StatusOK)
	tok, _ := e.user("ann")
	f := e.createFolder(tok, map[string]any{"name": "small", "host": "local"})
	wantStatus(t, e.put(tok, f.ID, "a", "12345678"), http.StatusCreated)
	p := wantProblem(t, e.put(tok, f.ID, "b", "12345"), http.StatusRequestEntityTooLarge, api.ProblemTooLarge)
	wantDetail(t, p, "max_vfolder_size 10")

	// Without a Content-Length the limit is enforced while streaming, and
	// nothing of the refused upload stays.
	req := newRequest(t, http.MethodPut, e.url("/v1/folders/"+f.ID+"/files/c"), nil)
	req.Body = readerOnly{strings.NewReader("12345")}
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+tok)
	wantProblem(t, send(t, req), http.StatusRequestEntityTooLarge, api.ProblemTooLarge)
	r = e.do(http.MethodGet, "/v1/folders/"+f.ID+"/files", tok, nil)
	wantStatus(t, r, http.StatusOK)
	var l api.List[api.FileEntry]
	r.JSON(t, &l)
	if len(l.Items) != 1 || l.Items[0].Name != "a" || l.Items[0].Size != 8 {
		t.Errorf("folder holds %+v, want only a (8 bytes)", l.Items)
	}
	if got := e.folders(tok)["small"]; got.UsageBytes != 8 {
		t.Errorf("usage_bytes %d, want 8", got.UsageBytes)
	}
	// Written behind the API's back (as a session would), the folder is
	// marked over quota once measured, and uploads are refused.
	if err := os.WriteFile(filepath.Join(e.host, f.ID, "big"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 15*time.Second, func() error {
		if got := e.folders(tok)["small"]; !got.OverQuota || got.UsageBytes != 18 {
			return fmt.Errorf("folder %+v, want over quota with 18 bytes", got)
		}
		return nil
	})
	wantProblem(t, e.put(tok, f.ID, "d", ""), http.StatusRequestEntityTooLarge, api.ProblemTooLarge)
}

type readerOnly struct{ r *strings.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r readerOnly) Close() error               { return nil }

// TestFilePathsCannotLeaveTheFolder tries the ways out of a folder: ..,
// absolute paths and symlinks, for listing, download, upload and delete.
func TestFilePathsCannotLeaveTheFolder(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	tok, _ := e.user("ann")
	f := e.createFolder(tok, map[string]any{"name": "box", "host": "local"})
	other := e.createFolder(tok, map[string]any{"name": "next", "host": "local"})
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("top secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.host, f.ID)
	if err := os.Symlink(secret, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(secret), filepath.Join(dir, "outdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../"+other.ID, filepath.Join(dir, "sibling")); err != nil {
		t.Fatal(err)
	}
	bearer := func(req *http.Request) *http.Request { req.Header.Set("Authorization", "Bearer "+tok); return req }
	files := "/v1/folders/" + f.ID + "/files"
	tests := []struct {
		name, method, path string
		status             int
	}{
		{"list with ..", http.MethodGet, files + "?path=..", 400},
		{"list with ../..", http.MethodGet, files + "?path=a/../../x", 400},
		{"list an absolute path", http.MethodGet, files + "?path=//etc", 400},
		{"list through a symlink out", http.MethodGet, files + "?path=outdir", 400},
		{"list a sibling folder through a symlink", http.MethodGet, files + "?path=sibling", 400},
		{"download a symlink out", http.MethodGet, files + "/link", 400},
		{"download through a symlinked dir", http.MethodGet, files + "/outdir/secret", 400},
		{"download with an encoded ..", http.MethodGet, files + "/a%2F..%2F..%2F..%2Fetc%2Fpasswd", 400},
		{"download with a plain ..", http.MethodGet, files + "/../../etc/passwd", http.StatusTemporaryRedirect}, // net/http cleans it first
		{"download an absolute encoded path", http.MethodGet, files + "/%2Fetc%2Fpasswd", 400},
		{"upload through a symlinked dir", http.MethodPut, files + "/outdir/planted", 400},
		// The upload replaces the link itself, inside the folder.
		{"upload over a symlink out", http.MethodPut, files + "/link", 201},
		{"delete through a symlinked dir", http.MethodDelete, files + "/outdir/secret", 400},
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.method == http.MethodPut {
				body = []byte("planted")
			}
			req := bearer(newRequest(t, tc.method, e.url(tc.path), body))
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "top secret" {
		t.Errorf("the file outside is %q, %v", b, err)
	}
	if st, err := os.Lstat(filepath.Join(dir, "link")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("the upload over the link: %v, %v; want a regular file in the folder", st, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(secret), "planted")); !os.IsNotExist(err) {
		t.Errorf("an upload landed outside the folder: %v", err)
	}
}

// TestFilesThroughAnyManager: with the host on shared storage configured on
// every manager, a follower forwards uploads (streamed, or signed with a
// keypair) to the leader and any manager serves the bytes back.
func TestFilesThroughAnyManager(t *testing.T) {
	dir := t.TempDir()
	c := testcluster.Start(t, 3, withFolderHost(dir), testcluster.InsecureRaft) // about forwarding, not the transport
	leader, follower := c.Leader(), c.Follower()
	admin := testcluster.Login(t, leader, testcluster.AdminEmail, testcluster.AdminPassword)
	u := createUser(t, leader, admin, "ann@example.com", "ann", api.RoleUser)
	tok := testcluster.Login(t, follower, u.User.Email, testPassword)
	e := &folderEnv{t: t, s: follower, admin: admin, host: dir}
	f := e.createFolder(tok, map[string]any{"name": "box", "host": "local"})
	wantStatus(t, e.put(tok, f.ID, "a.txt", "through a follower"), http.StatusCreated)
	body := []byte("signed bytes")
	req := signedRequest(t, http.MethodPut, e.url("/v1/folders/"+f.ID+"/files/b.txt"), u.Keypair, body, time.Now())
	wantStatus(t, send(t, req), http.StatusCreated)
	for _, s := range c.Servers {
		e.s = s
		if got := e.get(tok, f.ID, "a.txt"); got.Status != http.StatusOK || string(got.Body) != "through a follower" {
			t.Errorf("manager %s serves a.txt: %d %q", s.HTTPAddr(), got.Status, got.Body)
		}
		if got := e.get(tok, f.ID, "b.txt"); string(got.Body) != "signed bytes" {
			t.Errorf("manager %s serves b.txt %q", s.HTTPAddr(), got.Body)
		}
	}
	// A signature over other bytes than those sent is refused.
	req = signedRequest(t, http.MethodPut, e.url("/v1/folders/"+f.ID+"/files/c.txt"), u.Keypair, body, time.Now())
	req.Body = readerOnly{strings.NewReader("tampered")}
	req.ContentLength = int64(len("tampered"))
	wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
	// An unknown key or a stale date is refused before the body is read.
	stranger := api.Keypair{AccessKey: "AKNOBODY000000000000", SecretKey: "x"}
	for _, tc := range []struct {
		kp api.Keypair
		at time.Time
	}{{stranger, time.Now()}, {u.Keypair, time.Now().Add(-time.Hour)}} {
		req = signedRequest(t, http.MethodPut, e.url("/v1/folders/"+f.ID+"/files/d.txt"), tc.kp, body, tc.at)
		wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
	}
}

// TestSuperadminCreatesGroupFoldersForAnyDomain: a superadmin names the
// group's domain and the group's members there see the folder without an
// invitation; a domain admin who names another domain is refused (the
// same request succeeds for the superadmin), and one who names none gets
// their own domain's group.
func TestSuperadminCreatesGroupFoldersForAnyDomain(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	wantStatus(t, e.do(http.MethodPost, "/v1/domains", e.admin, map[string]any{"name": "lab2"}), http.StatusCreated)
	wantStatus(t, e.do(http.MethodPost, "/v1/domains/lab2/groups", e.admin, map[string]any{"name": "vision"}), http.StatusCreated)
	wantStatus(t, e.do(http.MethodPost, "/v1/users", e.admin, map[string]any{"email": "vi@example.com", "username": "vi",
		"password": testPassword, "domain": "lab2", "groups": []string{"vision"}}), http.StatusCreated)
	createUser(t, e.s, e.admin, "dom-admin@example.com", "domadmin", api.RoleAdmin)
	domAdmin := testcluster.Login(t, e.s, "dom-admin@example.com", testPassword)
	body := map[string]any{"name": "frames", "host": "local", "type": "group", "group": "vision", "domain": "lab2", "permission": "rw"}

	p := wantProblem(t, e.do(http.MethodPost, "/v1/folders", domAdmin, body), http.StatusForbidden, api.ProblemForbidden)
	wantFields(t, p, map[string][]string{"domain": {"only a superadmin creates group folders for another domain's groups; yours is default"}})
	p = wantProblem(t, e.do(http.MethodPost, "/v1/folders", e.admin, map[string]any{"name": "frames", "host": "local", "type": "group", "group": "vision"}),
		http.StatusBadRequest, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"group": {"no group vision in domain default"}})
	p = wantProblem(t, e.do(http.MethodPost, "/v1/folders", e.admin, map[string]any{"name": "mine", "host": "local", "domain": "lab2"}),
		http.StatusBadRequest, api.ProblemValidation)
	wantFields(t, p, map[string][]string{"domain": {"only group folders name a domain"}})

	f := e.createFolder(e.admin, body)
	if f.Type != api.FolderGroup || f.Group != "vision" {
		t.Fatalf("created %+v", f)
	}
	vi := testcluster.Login(t, e.s, "vi@example.com", testPassword)
	if got, ok := e.folders(vi)["frames"]; !ok || got.Permission != api.PermRW || got.ID != f.ID {
		t.Fatalf("vision's member sees %+v (listed: %v), want frames with rw", got, ok)
	}
	if _, ok := e.folders(domAdmin)["frames"]; ok {
		t.Fatal("the default domain's admin lists another domain's group folder")
	}
}

// TestFoldersListNewestFirst: a user's folders, own and shared alike, come
// newest first, page after page.
func TestFoldersListNewestFirst(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	tok, _ := e.user("maker")
	for _, n := range []string{"one", "two", "three"} {
		e.createFolder(tok, map[string]any{"name": n, "host": "local"})
	}
	var got []string
	cursor := ""
	for {
		r := e.do(http.MethodGet, "/v1/folders?limit=2&cursor="+cursor, tok, nil)
		wantStatus(t, r, http.StatusOK)
		var l api.List[api.Folder]
		r.JSON(t, &l)
		for _, f := range l.Items {
			got = append(got, f.Name)
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if strings.Join(got, " ") != "three two one" {
		t.Fatalf("folders listed %v, want three two one", got)
	}
}

// TestMakeDirectory: a user with rw makes a directory (with those on the
// way) that the listing shows; a member with ro, a stranger and a path
// leaving the folder are refused, and an existing path is a conflict.
func TestMakeDirectory(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	wantStatus(t, e.do(http.MethodPost, "/v1/domains/default/groups", e.admin, map[string]any{"name": "team"}), http.StatusCreated)
	ownerTok, _ := e.user("owner")
	readerTok, reader := e.user("reader")
	strangerTok, _ := e.user("stranger")
	e.members("team", []string{reader.User.Email}, nil)
	own := e.createFolder(ownerTok, map[string]any{"name": "mine", "host": "local"})
	group := e.createFolder(e.admin, map[string]any{"name": "team-ro", "host": "local", "type": "group", "group": "team", "permission": "ro"})

	r := e.do(http.MethodPost, "/v1/folders/"+own.ID+"/directories", ownerTok, map[string]any{"path": "data/raw"})
	wantStatus(t, r, http.StatusCreated)
	var made api.FileEntry
	r.JSON(t, &made)
	if made.Path != "data/raw" || made.Name != "raw" || made.Type != "dir" {
		t.Fatalf("made %+v", made)
	}
	r = e.do(http.MethodGet, "/v1/folders/"+own.ID+"/files?path=data", ownerTok, nil)
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"path":"data/raw","type":"dir"`) {
		t.Fatalf("listing of data: %s", r.Body)
	}
	wantDetail(t, wantProblem(t, e.do(http.MethodPost, "/v1/folders/"+own.ID+"/directories", ownerTok, map[string]any{"path": "data/raw"}),
		http.StatusConflict, api.ProblemConflict), "already exists: data/raw")
	wantProblem(t, e.do(http.MethodPost, "/v1/folders/"+own.ID+"/directories", ownerTok, map[string]any{"path": "../escape"}),
		http.StatusBadRequest, api.ProblemValidation)
	wantFields(t, wantProblem(t, e.do(http.MethodPost, "/v1/folders/"+own.ID+"/directories", ownerTok, map[string]any{}),
		http.StatusBadRequest, api.ProblemValidation), map[string][]string{"path": {"path is required: the directory to make, e.g. data/raw"}})
	wantDetail(t, wantProblem(t, e.do(http.MethodPost, "/v1/folders/"+group.ID+"/directories", readerTok, map[string]any{"path": "x"}),
		http.StatusForbidden, api.ProblemForbidden), "read-only for you")
	wantProblem(t, e.do(http.MethodPost, "/v1/folders/"+own.ID+"/directories", strangerTok, map[string]any{"path": "x"}),
		http.StatusNotFound, api.ProblemNotFound)
	if _, err := os.Stat(filepath.Join(e.host, "escape")); err == nil {
		t.Fatal("a directory was made outside the folder")
	}
}
