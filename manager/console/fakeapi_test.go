package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/berth-cluster/berth/manager/console"
)

// fakeAPI answers the parts of API.md the storage and maintenance pages
// use, exactly as the contract describes them, so those pages are checked
// before the manager serves the endpoints. It records the writes.
type fakeAPI struct {
	mu      sync.Mutex
	folders []map[string]any
	posts   []string // "PATH BODY CSRF"
}

const fakeCSRF = "fake-csrf-token"

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if r.Method == http.MethodPost {
		f.posts = append(f.posts, r.URL.Path+" "+strings.TrimSpace(string(body))+" "+r.Header.Get("X-Berth-CSRF"))
	}
	user := map[string]any{"email": "root@example.com", "username": "root", "role": "superadmin", "status": "active", "domain": "default", "groups": []string{"lab"}}
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /v1/auth/login":
		answer(http.StatusOK, map[string]any{"token": "t", "csrf_token": fakeCSRF, "user": user})
	case "GET /v1/auth/whoami":
		answer(http.StatusOK, map[string]any{"user": user})
	case "GET /v1/folders":
		answer(http.StatusOK, map[string]any{"items": f.folders})
	case "POST /v1/folders":
		var in map[string]any
		json.Unmarshal(body, &in)
		folder := map[string]any{"id": "f1", "name": in["name"], "host": in["host"], "type": in["type"], "owner": "root@example.com",
			"group": in["group"], "permission": in["permission"], "usage_bytes": 0, "created_at": "2026-01-02T03:04:05Z"}
		f.folders = append(f.folders, folder)
		answer(http.StatusCreated, folder)
	case "GET /v1/folder-hosts":
		answer(http.StatusOK, map[string]any{"items": []map[string]any{{"name": "local"}}})
	case "GET /v1/invitations":
		answer(http.StatusOK, map[string]any{"items": []map[string]any{{"id": "i1", "folder_name": "papers", "inviter": "ann@example.com",
			"invitee": "root@example.com", "permission": "rw", "state": "pending"}}})
	case "GET /v1/domains/default/groups":
		answer(http.StatusOK, map[string]any{"items": []map[string]any{{"name": "default", "domain": "default"}, {"name": "lab", "domain": "default"}}})
	case "POST /v1/maintenance/recalculate-usage":
		answer(http.StatusOK, map[string]any{"checked": map[string]any{"agents": 2, "keypairs": 3},
			"drift": []map[string]any{{"scope": "agent:a1", "slot": "cpu", "recorded": 2, "actual": 1}}, "fixed": 1})
	default:
		answer(http.StatusNotFound, map[string]any{"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no route " + r.Method + " " + r.URL.Path})
	}
}

// TestStorageAndMaintenancePagesFollowTheContract checks the Data & Storage
// and Maintenance pages against API.md's storage-folder and maintenance
// contract, served by a fake until the manager serves them.
func TestStorageAndMaintenancePagesFollowTheContract(t *testing.T) {
	chromiumPath(t)
	fake := &fakeAPI{}
	mux := http.NewServeMux()
	mux.Handle("/v1/", fake)
	mux.Handle("/", console.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := startBrowser(t, srv.URL)
	b.do("open the console", chromedp.Navigate(b.base+"/#/data"), chromedp.WaitVisible(chromedp.CSS("#login-email")))
	b.login("root@example.com", "whatever-1!")
	b.open("data")
	b.do("invitation listed", waitText("#invitations-list", "papers"), waitText("#invitations-list", "ann@example.com"))
	b.do("new group folder", click("#new-folder"), chromedp.WaitVisible(chromedp.CSS("#folder-dialog")),
		waitJS(`document.querySelector("#folder-host").value === "local"`),
		waitJS(`document.querySelectorAll("#folder-group option").length === 2`),
		setValue("#folder-name", "team-data"), setValue("#folder-type", "group"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#folder-type").dispatchEvent(new Event("change"))`),
		setValue("#folder-group", "lab"), setValue("#folder-permission", "ro"))
	b.shot("fake-01-new-group-folder")
	b.do("create", click("#folder-submit"), chromedp.WaitNotPresent(chromedp.CSS("#folder-dialog")),
		waitText("#folders-list", "team-data"),
		waitJS(`[...document.querySelectorAll("#folders-list tbody tr")].some(r => r.textContent.includes("team-data") && r.querySelector('[data-col="Permission"]').textContent.trim() === "R" && r.querySelector('[data-col="Type"]').textContent.includes("Group (lab)"))`))
	b.shot("fake-02-data-storage")

	b.open("maintenance")
	b.do("recalculate", click("#recalculate-usage"), waitText("#recalculate-result", "Checked 2 agents and 3 keypairs."),
		waitText("#recalculate-result", "Fixed 1 record that had drifted."), waitText("#drift-list", "agent:a1"))
	b.shot("fake-03-maintenance")

	fake.mu.Lock()
	defer fake.mu.Unlock()
	want := []string{
		`/v1/auth/login {"email":"root@example.com","password":"whatever-1!"} `,
		`/v1/folders {"name":"team-data","host":"local","type":"group","permission":"ro","group":"lab"} ` + fakeCSRF,
		`/v1/maintenance/recalculate-usage {} ` + fakeCSRF,
	}
	if strings.Join(fake.posts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the console sent:\n%s\nwant:\n%s", strings.Join(fake.posts, "\n"), strings.Join(want, "\n"))
	}
}
