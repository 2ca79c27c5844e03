package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/berth-cluster/berth/manager/console"
)

// fakeAPI answers what a real manager does not readily produce, for the
// rendering edge cases: usage that has drifted (the manager keeps it from
// drifting), names and ids as long as the API allows, and a manager
// without the folder API. The walkthroughs run against a real manager
// (browser_test.go, browser_day_test.go).
type fakeAPI struct{}

const fakeCSRF = "fake-csrf-token"

var (
	longName  = strings.Repeat("very-long-session-name-", 3) + "end"
	longImage = "registry.example.com:5000/" + strings.Repeat("deeply/nested/", 6) + "image-with-a-long-name:2026.12.07-cuda12.4-cudnn9-devel"
	longOwner = strings.Repeat("x", 40) + "@" + strings.Repeat("sub.", 5) + "example.com"
	longID    = "s-" + strings.Repeat("abcdefghij", 6)
)

func (fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user := map[string]any{"email": "root@example.com", "username": "root", "role": "superadmin", "status": "active", "domain": "default", "groups": []string{"lab"}}
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	session := map[string]any{"id": longID, "name": longName, "owner": longOwner, "access_key": "AK" + strings.Repeat("Z", 18), "image": longImage,
		"type": "batch", "status": "ERROR", "status_info": "agent-lost: " + strings.Repeat("the agent stopped answering heartbeats ", 3),
		"status_history": []any{}, "requested": map[string]any{"cpu": 12.5, "mem": 137438953472, "cuda.device": 0, "cuda.shares": 2.5},
		"occupied": map[string]any{}, "containers": []any{}, "created_at": "2026-01-02T03:04:05Z", "exit_code": nil, "cluster_size": 4}
	switch r.Method + " " + r.URL.Path {
	case "POST /v1/auth/login":
		answer(http.StatusOK, map[string]any{"token": "t", "csrf_token": fakeCSRF, "user": user})
	case "GET /v1/auth/whoami":
		answer(http.StatusOK, map[string]any{"user": user})
	case "GET /v1/resources/me":
		answer(http.StatusOK, map[string]any{"access_key": "AK", "resource_policy": "default", "limits": map[string]any{},
			"occupied": map[string]any{}, "remaining": map[string]any{}, "allocatable": map[string]any{},
			"cluster": map[string]any{"total": map[string]any{}}, "concurrency": map[string]any{"used": 0, "max": nil}})
	case "GET /v1/sessions":
		answer(http.StatusOK, map[string]any{"items": []any{session}, "next_cursor": ""})
	case "POST /v1/maintenance/recalculate-usage":
		answer(http.StatusOK, map[string]any{"checked": map[string]any{"agents": 2, "keypairs": 3},
			"drift": []map[string]any{{"scope": "agent:a1", "slot": "cpu", "recorded": 2, "actual": 1}}, "fixed": 1})
	default:
		answer(http.StatusNotFound, map[string]any{"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no route " + r.Method + " " + r.URL.Path})
	}
}

// TestConsoleRendersEdgeCases: values as long as the API allows still fit
// a laptop screen (ids shortened, the whole on hover, copied by a click),
// drifted usage is listed, and a manager without the folder API is said
// to lack it rather than failing.
func TestConsoleRendersEdgeCases(t *testing.T) {
	// Not parallel: one chromium at a time, beside whatever else the
	// suite runs, keeps each page step well within its deadline on two
	// cores.
	chromiumPath(t)
	mux := http.NewServeMux()
	mux.Handle("/v1/", fakeAPI{})
	mux.Handle("/", console.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := startBrowser(t, srv.URL)
	b.do("open the console", chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-email")))
	b.login("root@example.com", "whatever-1!")
	b.nav("sessions")
	b.do("long values", click("#tab-others"), pageLoaded(), waitText("#sessions-list", longName), waitText("#sessions-list", "× 4"),
		waitJS(`document.querySelector("#sessions-list .short-id").title === `+js(longID)),
		waitJS(`document.querySelector("#sessions-list .short-id code").textContent.length < 15`))
	b.shot("fake-01-long-values")
	b.do("copy the id", click(`#sessions-list .short-id button.copy`), waitText(".toasts", "Copied "+longID[:40]))

	b.nav("data")
	b.do("no folder API", waitText("#folders-table", "Data & Storage is not available on this manager"),
		waitJS(`document.querySelector("#new-folder").disabled`))
	b.shot("fake-02-no-folder-api")

	b.nav("maintenance")
	b.do("recalculate", click("#recalculate-usage"), waitText("#recalculate-result", "Checked 2 agents and 3 keypairs."),
		waitText("#recalculate-result", "Fixed 1 record that had drifted."), waitText("#drift-list", "agent:a1"))
	b.shot("fake-03-maintenance-drift")
}
