package console_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

const (
	bobEmail      = "bob@example.com"
	bobPassword   = "Bob-pass-1"
	carolEmail    = "carol@example.com"
	carolPassword = "Carol-pass-1"
	danaEmail     = "dana@example.com"
	danaPassword  = "Dana-pass-1"
	monaEmail     = "mona@example.com"
	monaPassword  = "Mona-pass-1"
)

// apiGet reads path with token into out (what the API holds after a step).
func apiGet(t *testing.T, s *server.Server, token, path string, out any) {
	t.Helper()
	adminDo(t, s, token, http.MethodGet, path, nil, http.StatusOK).JSON(t, out)
}

// downloaded waits for a file the browser saves and returns its content.
func (b *tab) downloaded(name string) string {
	b.t.Helper()
	file := filepath.Join(b.downloads, name)
	var data []byte
	testcluster.Eventually(b.t, stepTimeout, func() error {
		var err error
		data, err = os.ReadFile(file)
		if err == nil && len(data) == 0 {
			return fmt.Errorf("%s is still being written", file)
		}
		return err
	})
	return string(data)
}

// TestConsoleAdminWalkthroughs follows every walkthrough of the reference
// manual in a real browser against a real manager, each step through the
// page (clicks and typing), checking what the page shows and then what the
// API holds. The steps build on each other (the user created in one logs
// in later), so they run in order in one browser.
func TestConsoleAdminWalkthroughs(t *testing.T) {
	// Not parallel: one chromium at a time, beside whatever else the
	// suite runs, keeps each page step well within its deadline on two
	// cores.
	chromiumPath(t)
	c := testcluster.StartFake(t, func(cfg *server.Config) {
		cfg.AgentToken = agentToken
		cfg.FolderHosts = map[string]string{"local": t.TempDir()}
	})
	s := c.Servers[0]
	startFakeAgent(t, s)
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	// The fixtures the walkthroughs start from: a gardener policy that
	// carol's keypair holds (so deleting it must fail), a folder host the
	// default policy allows, a domain admin and a monitor.
	adminDo(t, s, admin, http.MethodPost, "/v1/resource-policies", map[string]any{"name": "gardener"}, http.StatusCreated)
	adminDo(t, s, admin, http.MethodPost, "/v1/users", map[string]any{"email": carolEmail, "username": "carol",
		"password": carolPassword, "resource_policy": "gardener"}, http.StatusCreated)
	adminDo(t, s, admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{"allowed_vfolder_hosts": []string{"local"}}, http.StatusOK)
	adminDo(t, s, admin, http.MethodPatch, "/v1/resource-policies/gardener", map[string]any{"allowed_vfolder_hosts": []string{"local"}}, http.StatusOK)
	adminDo(t, s, admin, http.MethodPost, "/v1/users", map[string]any{"email": danaEmail, "username": "dana",
		"password": danaPassword, "role": api.RoleAdmin}, http.StatusCreated)
	adminDo(t, s, admin, http.MethodPost, "/v1/users", map[string]any{"email": monaEmail, "username": "mona",
		"password": monaPassword, "role": api.RoleMonitor}, http.StatusCreated)

	// Each step needs the ones before it: stop at the first that fails.
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	b := startBrowser(t, testcluster.URL(s))
	b.do("open the console", chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-email")))
	b.shot("01-login")

	step("a wrong password is refused with a message", func(t *testing.T) {
		b.t = t
		b.do("wrong password", typeIn("#login-email", testcluster.AdminEmail), typeIn("#login-password", "not-the-password-1!"),
			click("#login-submit"), waitText("#login-message", "Wrong email or password."))
	})

	step("an admin logs in and sees the Administration menu", func(t *testing.T) {
		b.t = t
		b.login(testcluster.AdminEmail, testcluster.AdminPassword)
		b.do("admin menu", chromedp.WaitVisible(chromedp.CSS("#admin-menu")))
		for _, item := range []string{"Users", "Groups", "Agents", "Maintenance", "Information"} {
			b.do("menu item "+item, waitText("#admin-menu", item))
		}
		b.shot("02-sessions-admin")
	})

	step("create user shows each validation message under its field", func(t *testing.T) {
		b.t = t
		b.nav("users")
		b.do("users list", waitText("#users-list", testcluster.AdminEmail))
		b.shot("03-users-active")
		b.do("open create user", click("#create-user"), chromedp.WaitVisible(chromedp.CSS("#create-user-dialog")))
		b.shot("04-create-user-dialog")

		b.do("no input", click("#create-user-submit"),
			waitText(fieldError("new-user-email"), "Email is required."),
			waitText(fieldError("new-user-username"), "Username is required."),
			waitText(fieldError("new-user-password"), "Password is required."),
			waitText(fieldError("new-user-confirm"), "Confirm the password"))
		b.shot("05-create-user-no-input")

		b.do("no confirmation", typeIn("#new-user-email", bobEmail), typeIn("#new-user-username", "bob"),
			typeIn("#new-user-password", bobPassword), click("#create-user-submit"),
			waitText(fieldError("new-user-confirm"), "Confirm the password: type it again."),
			waitJS(fmt.Sprintf(`document.querySelector(%s).textContent === ""`, js(fieldError("new-user-email")))))
		b.shot("06-create-user-no-confirmation")

		b.do("confirmation differs", typeIn("#new-user-confirm", bobPassword+"x"), click("#create-user-submit"),
			waitText(fieldError("new-user-confirm"), "The passwords do not match."))
		b.shot("07-create-user-mismatch")

		b.do("password policy", typeIn("#new-user-password", "short"), typeIn("#new-user-confirm", "short"), click("#create-user-submit"),
			waitText(fieldError("new-user-password"), "password must be at least 8 characters long"),
			waitText(fieldError("new-user-password"), "password must contain at least one digit"),
			waitText(fieldError("new-user-password"), "password must contain at least one special character"))
		b.shot("08-create-user-password-policy")

		b.do("duplicate email", typeIn("#new-user-email", carolEmail), typeIn("#new-user-password", bobPassword),
			typeIn("#new-user-confirm", bobPassword), click("#create-user-submit"),
			waitText(fieldError("new-user-email"), carolEmail))
		r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/users/"+bobEmail, admin, nil)
		if r.Status != http.StatusNotFound {
			t.Fatalf("after refused creates the API has bob: %d %s", r.Status, r.Body)
		}
	})

	step("a valid user is created, listed first and shown with domain and groups", func(t *testing.T) {
		b.t = t
		b.do("create bob", typeIn("#new-user-email", bobEmail), click("#create-user-submit"),
			chromedp.WaitVisible(chromedp.CSS("#user-created-dialog")), waitText("#created-access-key", "AK"))
		b.shot("09-user-created")
		b.do("close", click("#user-created-ok"), waitText("#users-list", bobEmail),
			// Newest first: the user just made heads the list.
			waitText("#users-list tbody tr:first-child", bobEmail))
		var u api.User
		apiGet(t, s, admin, "/v1/users/"+bobEmail, &u)
		if u.Username != "bob" || u.Status != api.StatusActive || u.Role != api.RoleUser || len(u.Keypairs) != 1 {
			t.Fatalf("the API holds %+v", u)
		}
	})

	step("the email search box filters the list", func(t *testing.T) {
		b.t = t
		b.do("search", chromedp.SendKeys(chromedp.CSS("#search-email"), "bob@"),
			waitJS(`document.querySelectorAll("#users-list tbody tr").length === 1`), waitText("#users-list tbody", bobEmail))
		b.do("clear search", typeIn("#search-email", "@"), waitText("#users-list tbody", testcluster.AdminEmail))
	})

	step("update dialog shows the user id disabled and the two switches", func(t *testing.T) {
		b.t = t
		b.do("open update", click(`button[data-action="update"][data-user="`+bobEmail+`"]`), chromedp.WaitVisible(chromedp.CSS("#update-user-dialog")),
			waitJS(`document.querySelector("#edit-user-email").disabled`), waitJS(`document.querySelector("#user-active").checked`),
			waitJS(`!document.querySelector("#user-need-password-change").checked`))
		b.shot("11-update-user")
		b.do("set full name and require a password change", typeIn("#edit-user-fullname", "Bob Builder"),
			click("#user-need-password-change"), click("#update-user-submit"), chromedp.WaitNotPresent(chromedp.CSS("#update-user-dialog")),
			waitText("#users-list", "Bob Builder"))
		var u api.User
		apiGet(t, s, admin, "/v1/users/"+bobEmail, &u)
		if u.FullName != "Bob Builder" || !u.NeedPasswordChange {
			t.Fatalf("after the update: full_name %q need_password_change %v", u.FullName, u.NeedPasswordChange)
		}
	})

	step("deactivating a user moves it to the Inactive tab, ends its keypairs and its logins", func(t *testing.T) {
		b.t = t
		b.do("trash", click(`button[data-action="deactivate"][data-user="`+carolEmail+`"]`), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
		b.shot("12-deactivate-confirm")
		b.do("okay", click("#confirm-ok"), waitJS(`!document.querySelector("#users-list").textContent.includes("carol@example.com")`))
		b.do("inactive tab", click("#status-inactive"), waitText("#users-list", carolEmail))
		b.shot("13-users-inactive")
		var kps api.List[api.Keypair]
		apiGet(t, s, admin, "/v1/keypairs?user="+carolEmail, &kps)
		if len(kps.Items) != 1 || kps.Items[0].IsActive {
			t.Fatalf("carol's keypairs after deactivation: %+v", kps.Items)
		}
		b.logout()
		b.do("inactive login", typeIn("#login-email", carolEmail), typeIn("#login-password", carolPassword),
			click("#login-submit"), waitText("#login-message", "This account is inactive"))
		b.shot("14-login-inactive")
	})

	step("reactivating from the Inactive tab leaves the keypairs inactive, as the manual notes", func(t *testing.T) {
		b.t = t
		b.login(testcluster.AdminEmail, testcluster.AdminPassword)
		b.nav("users")
		b.do("inactive tab", click("#status-inactive"), waitText("#users-list", carolEmail),
			click(`button[data-action="update"][data-user="`+carolEmail+`"]`), chromedp.WaitVisible(chromedp.CSS("#update-user-dialog")),
			waitJS(`!document.querySelector("#user-active").checked`), click("#user-active"), click("#update-user-submit"),
			chromedp.WaitNotPresent(chromedp.CSS("#update-user-dialog")),
			waitJS(`!document.querySelector("#users-list").textContent.includes("carol@example.com")`))
		b.do("active again", click("#status-active"), waitText("#users-list", carolEmail))
		b.do("her keypair stays inactive", click("#tab-credentials"), click("#status-inactive"), waitText("#credentials-list", carolEmail))
		b.shot("14a-credentials-inactive-after-reactivation")
		var u api.User
		apiGet(t, s, admin, "/v1/users/"+carolEmail, &u)
		var kps api.List[api.Keypair]
		apiGet(t, s, admin, "/v1/keypairs?user="+carolEmail, &kps)
		if u.Status != api.StatusActive || len(kps.Items) != 1 || kps.Items[0].IsActive {
			t.Fatalf("after reactivation: carol %s, keypairs %+v; want active with the keypair still inactive", u.Status, kps.Items)
		}
		// Which credential to turn on again is the admin's choice.
		ak := kps.Items[0].AccessKey
		b.do("reactivate her keypair", click(`button[data-action="update"][data-key="`+ak+`"]`), chromedp.WaitVisible(chromedp.CSS("#keypair-update-dialog")),
			waitJS(`!document.querySelector("#keypair-active").checked`), click("#keypair-active"), click("#keypair-update-submit"),
			chromedp.WaitNotPresent(chromedp.CSS("#keypair-update-dialog")), waitJS(`!document.querySelector("#credentials-list").textContent.includes("carol@example.com")`),
			click("#status-active"), waitText("#credentials-list", carolEmail))
		apiGet(t, s, admin, "/v1/keypairs?user="+carolEmail, &kps)
		if !kps.Items[0].IsActive {
			t.Fatalf("carol's keypair after the admin turned it on: %+v", kps.Items[0])
		}
	})

	step("groups: create, describe, deactivate, reactivate, and add bob as a member by searching", func(t *testing.T) {
		b.t = t
		b.nav("groups")
		b.do("groups of default", waitText("#groups-heading", "Groups of domain default"), waitText("#domains-list", "default"))
		b.do("create lab", click("#create-group"), chromedp.WaitVisible(chromedp.CSS("#group-dialog")),
			typeIn("#group-name", "lab"), typeIn("#group-description", "Machine learning lab"), click("#group-submit"),
			chromedp.WaitNotPresent(chromedp.CSS("#group-dialog")), waitText("#groups-list", "Machine learning lab"))
		b.do("members dialog", click(`button[data-action="members"][data-group="lab"]`), chromedp.WaitVisible(chromedp.CSS("#members-dialog")),
			waitText("#members-list", "No members yet."), chromedp.SendKeys(chromedp.CSS("#member-search"), "bob"),
			chromedp.WaitVisible(chromedp.CSS(`[data-candidate="`+bobEmail+`"]`)))
		b.shot("15a-group-members-search")
		b.do("add bob", click(`button[data-action="add-member"][data-user="`+bobEmail+`"]`),
			chromedp.WaitVisible(chromedp.CSS(`#members-list [data-member="`+bobEmail+`"]`)),
			click("#members-done"), chromedp.WaitNotPresent(chromedp.CSS("#members-dialog")),
			waitText(`[data-members="lab"]`, bobEmail))
		var g api.GroupDetail
		apiGet(t, s, admin, "/v1/domains/default/groups/lab", &g)
		if g.Description != "Machine learning lab" || !slices.Equal(g.Members, []string{bobEmail}) {
			t.Fatalf("the API holds group %+v", g)
		}
		b.do("deactivate", click(`button[data-action="deactivate"][data-group="lab"]`), click("#confirm-ok"),
			chromedp.WaitVisible(chromedp.CSS(`button[data-action="reactivate"][data-group="lab"]`)))
		apiGet(t, s, admin, "/v1/domains/default/groups/lab", &g)
		if g.IsActive {
			t.Fatal("the group is still active after deactivation in the console")
		}
		b.do("reactivate", click(`button[data-action="reactivate"][data-group="lab"]`),
			chromedp.WaitVisible(chromedp.CSS(`button[data-action="deactivate"][data-group="lab"]`)))
		b.shot("15b-groups")
		apiGet(t, s, admin, "/v1/domains/default/groups/lab", &g)
		if !g.IsActive {
			t.Fatal("the group is not active again after reactivation in the console")
		}
	})

	step("a superadmin creates a domain and sees its groups", func(t *testing.T) {
		b.t = t
		b.do("create research", click("#create-domain"), chromedp.WaitVisible(chromedp.CSS("#domain-dialog")),
			typeIn("#domain-name", "research"), typeIn("#domain-description", "Research institute"), click("#domain-submit"),
			chromedp.WaitNotPresent(chromedp.CSS("#domain-dialog")), waitText("#groups-heading", "Groups of domain research"),
			waitText("#domains-list", "Research institute"), waitText("#groups-list", "No groups in research yet."))
		b.shot("15c-domains")
		var ds api.List[api.Domain]
		apiGet(t, s, admin, "/v1/domains", &ds)
		if !slices.ContainsFunc(ds.Items, func(d api.Domain) bool { return d.Name == "research" && d.Description == "Research institute" }) {
			t.Fatalf("domains %+v lack research", ds.Items)
		}
	})

	step("the user details show the groups the user belongs to", func(t *testing.T) {
		b.t = t
		b.nav("users")
		b.do("details", click(`button[data-action="details"][data-user="`+bobEmail+`"]`),
			chromedp.WaitVisible(chromedp.CSS("#user-details-dialog")),
			waitText(`#user-details-dialog dd[data-field="Domain"]`, "default"),
			waitText(`#user-details-dialog dd[data-field="Groups"]`, "lab"))
		b.shot("10-user-details")
		b.do("close details", click("#user-details-close"), chromedp.WaitNotPresent(chromedp.CSS("#user-details-dialog")))
	})

	indicator := func(t *testing.T, cpu, mem string) {
		t.Helper()
		b.nav("sessions")
		b.do("indicator", waitText("#indicator-cpu-max", cpu), waitText("#indicator-mem-max", mem),
			waitText("#allocatable-cpu", cpu), waitText("#allocatable-mem", mem))
		b.do("start dialog", click("#start-session"), chromedp.WaitVisible(chromedp.CSS("#start-dialog")))
		for slider, want := range map[string]string{"#slider-cpu": cpu, "#slider-mem": mem} {
			if got := b.eval(fmt.Sprintf(`document.querySelector(%s).max`, js(slider))); got != want {
				t.Errorf("%s max = %s, want %s", slider, got, want)
			}
			// Pulling the slider past the right end stops at the maximum.
			if got := b.eval(fmt.Sprintf(`(() => { const s = document.querySelector(%s); s.value = "100000"; s.dispatchEvent(new Event("input")); return s.value; })()`, js(slider))); got != want {
				t.Errorf("%s pulled all the way right = %s, want %s", slider, got, want)
			}
		}
	}

	step("a user's indicator and sliders show the whole node while the policy is unlimited", func(t *testing.T) {
		b.t = t
		b.logout()
		b.login(bobEmail, bobPassword)
		b.do("no admin menu", waitJS(`!document.querySelector("#admin-menu")`))
		indicator(t, "8", "16")
		b.shot("16-start-dialog-no-limit")
		b.do("cancel", click("#start-dialog footer button.secondary"), chromedp.WaitNotPresent(chromedp.CSS("#start-dialog")))
		b.shot("17-resource-indicator-no-limit")
		b.open("users")
		b.do("admin page by address", waitText("#page", "for administrators only"), waitJS(`!document.querySelector("#users-list")`))
		b.shot("18-user-types-admin-url")
		b.logout()
	})

	step("the admin limits the default policy", func(t *testing.T) {
		b.t = t
		b.login(testcluster.AdminEmail, testcluster.AdminPassword)
		b.nav("users")
		b.do("policies tab", click("#tab-policies"),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="cpu"]`, "∞"),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="mem"]`, "∞"),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="cuda.shares"]`, "∞"))
		b.shot("19-resource-policies")
		b.do("update default", click(`button[data-action="update"][data-policy="default"]`), chromedp.WaitVisible(chromedp.CSS("#policy-dialog")),
			waitJS(`document.querySelector("#policy-name").disabled`),
			// Root in containers is off until a superadmin allows it.
			waitJS(`document.querySelector("#policy-allow-root") && !document.querySelector("#policy-allow-root").checked`))
		b.do("uncheck unlimited", click("#policy-cpu-unlimited"), click("#policy-mem-unlimited"), click("#policy-cuda-shares-unlimited"),
			typeIn("#policy-cpu", "600"), typeIn("#policy-mem", "4"), typeIn("#policy-cuda-shares", "1"),
			click("#policy-submit"),
			waitText(fieldError("policy-cpu"), "Must be from 0 to 512."))
		b.shot("20-update-policy")
		b.do("limit", typeIn("#policy-cpu", "2"), typeIn("#policy-idle", "3600"), click("#policy-submit"), chromedp.WaitNotPresent(chromedp.CSS("#policy-dialog")),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="cpu"]`, "2"),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="mem"]`, "4 GiB"),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="cuda.shares"]`, "1"),
			waitJS(rowWith("policies-list", "default")+`?.querySelector('[data-col="Idle timeout"]').textContent.trim() === "1h"`))
		b.shot("21-policy-updated")
		var p api.ResourcePolicy
		apiGet(t, s, admin, "/v1/resource-policies/default", &p)
		if got := fmt.Sprint(p.TotalResourceSlots); !strings.Contains(got, "cpu:2") || p.IdleTimeout != 3600 {
			t.Fatalf("the API holds default %+v (slots %s)", p, got)
		}
	})

	step("the user's indicator and sliders stop at the new limit; a session starts within it", func(t *testing.T) {
		b.t = t
		b.logout()
		b.login(bobEmail, bobPassword)
		indicator(t, "2", "4")
		b.shot("22-start-dialog-limit")
		b.do("cancel", click("#start-dialog footer button.secondary"), chromedp.WaitNotPresent(chromedp.CSS("#start-dialog")))
		b.do("fGPU limit", waitText(`[data-slot="cuda.shares"] .gauge-note`, "policy limit 1"))
		b.shot("23-resource-indicator-limit")
		b.do("start a session", click("#start-session"), chromedp.WaitVisible(chromedp.CSS("#start-dialog")),
			typeIn("#session-name", "walkthrough"), click("#start-submit"), chromedp.WaitNotPresent(chromedp.CSS("#start-dialog")),
			waitText("#sessions-list", "walkthrough"), waitText("#indicator-cpu-used", "1"), waitText("#indicator-sessions", "Sessions 1 /"))
		b.shot("24-session-started")
		var list api.List[api.Session]
		apiGet(t, s, admin, "/v1/sessions?all=true", &list)
		if len(list.Items) != 1 || list.Items[0].Name != "walkthrough" || list.Items[0].Owner != bobEmail {
			t.Fatalf("after START in the console the API holds %+v", list.Items)
		}
	})

	step("the credentials tab counts the keypair's sessions", func(t *testing.T) {
		b.t = t
		b.logout()
		b.login(testcluster.AdminEmail, testcluster.AdminPassword)
		b.nav("users")
		var kps api.List[api.Keypair]
		apiGet(t, s, admin, "/v1/keypairs?user="+bobEmail, &kps)
		ak := kps.Items[0].AccessKey
		b.do("credentials", click("#tab-credentials"), waitText("#credentials-list", bobEmail),
			waitText(fmt.Sprintf(`[data-sessions=%q]`, ak), "1"))
		b.shot("25-credentials")
		if kps.Items[0].ConcurrencyUsed != 1 {
			t.Fatalf("the API counts %d sessions for bob's keypair, want 1", kps.Items[0].ConcurrencyUsed)
		}
	})

	step("the admin terminates the session from the list", func(t *testing.T) {
		b.t = t
		b.nav("sessions")
		b.do("terminate it", clickJS(rowWith("sessions-list", "walkthrough")+`?.querySelector('[data-action="terminate"]')`),
			chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")), click("#confirm-ok"),
			chromedp.WaitNotPresent(chromedp.CSS(`#sessions-list button[data-action="terminate"]`)))
		testcluster.Eventually(t, stepTimeout, func() error {
			var list api.List[api.Session]
			apiGet(t, s, admin, "/v1/sessions?all=true", &list)
			if got := list.Items[0].Status; got != api.SessionTerminated {
				return fmt.Errorf("the session is %s", got)
			}
			return nil
		})
		b.do("finished tab", click("#tab-finished"), waitText("#sessions-list", "walkthrough"), waitText("#sessions-list", "TERMINATED"))
		b.shot("26-sessions-finished")
	})

	step("deleting a policy in use shows the refusal", func(t *testing.T) {
		b.t = t
		b.nav("users")
		b.do("policies", click("#tab-policies"), waitText("#policies-list", "gardener"))
		b.do("delete gardener", click(`button[data-action="delete"][data-policy="gardener"]`), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
		b.shot("27-policy-delete-confirm")
		b.do("okay", click("#confirm-ok"), waitText("#policies-message", "Cannot delete gardener"), waitText("#policies-list", "gardener"))
		b.shot("28-policy-in-use")
		adminDo(t, s, admin, http.MethodGet, "/v1/resource-policies/gardener", nil, http.StatusOK)
	})

	exportTab := func(t *testing.T, tab, name string, wantHeader string, wantIn []string) {
		t.Helper()
		b.do("... menu of "+tab, click("#tab-"+tab), click("#tab-more"), click("#export-csv"), chromedp.WaitVisible(chromedp.CSS("#export-dialog")))
		b.do("export "+tab, typeIn("#export-filename", name), click("#export-submit"), chromedp.WaitNotPresent(chromedp.CSS("#export-dialog")))
		data := b.downloaded(name + ".csv")
		lines := strings.Split(strings.TrimSpace(data), "\r\n")
		if lines[0] != wantHeader {
			t.Fatalf("%s export header %q, want %q", tab, lines[0], wantHeader)
		}
		for _, w := range wantIn {
			if !strings.Contains(data, w) {
				t.Fatalf("%s export lacks %q:\n%s", tab, w, data)
			}
		}
	}

	step("each tab of Users exports as CSV; the file name is at most 255 characters with .csv", func(t *testing.T) {
		b.t = t
		b.do("users tab", click("#tab-users"), waitText("#users-list", bobEmail))
		b.do("... menu", click("#tab-more"), click("#export-csv"), chromedp.WaitVisible(chromedp.CSS("#export-dialog")))
		b.do("too long a name", setValue("#export-filename", strings.Repeat("x", 252)), click("#export-submit"),
			waitText(fieldError("export-filename"), "at most 255 characters with the .csv that is added: at most 251 before it (it has 252)"))
		b.shot("29-export-csv-dialog")
		long := strings.Repeat("n", 251)
		// The manager names the file with all 255 characters; chromium
		// itself shortens so long a name on disk (room for .crdownload),
		// so the name is read where the console got it.
		b.do("the longest name", setValue("#export-filename", long), click("#export-submit"), chromedp.WaitNotPresent(chromedp.CSS("#export-dialog")),
			waitJS(fmt.Sprintf(`[...document.querySelectorAll(".toast")].some(t => t.title === %s)`, js("Downloaded "+long+".csv"))))
		exportTab(t, "users", "people", "email,username,full_name,role,status,domain,groups,need_password_change,created_at",
			[]string{bobEmail + ",bob,Bob Builder,user,active,default,lab,true,"})
		exportTab(t, "credentials", "keys", "access_key,user,is_active,is_admin,resource_policy,rate_limit,concurrency_used,created_at,last_used",
			[]string{"," + bobEmail + ",true,false,default,0,0,"})
		exportTab(t, "policies", "policies", "name,cpu,mem,cuda.device,cuda.shares,max_containers_per_session,idle_timeout,max_concurrent_sessions,"+
			"max_session_lifetime,allowed_vfolder_hosts,max_vfolder_size,max_vfolder_count,allow_root,allowed_images", []string{"default,2,4294967296,,1,", "gardener,"})
	})

	step("the admin exports sessions from the ... menu right of OTHERS", func(t *testing.T) {
		b.t = t
		b.nav("sessions")
		b.do("export dialog", click("#sessions-more"), click("#export-sessions"), chromedp.WaitVisible(chromedp.CSS("#export-dialog")),
			waitText("#export-dialog", "At most 255 characters"))
		b.shot("30-export-sessions-dialog")
		b.do("export", typeIn("#export-filename", "all-sessions"), click("#export-submit"), chromedp.WaitNotPresent(chromedp.CSS("#export-dialog")))
		data := b.downloaded("all-sessions.csv")
		if !strings.HasPrefix(data, "id,name,owner,") || !strings.Contains(data, ",walkthrough,"+bobEmail+",") {
			t.Fatalf("sessions export:\n%s", data)
		}
	})

	step("information shows version, licence, members and agents", func(t *testing.T) {
		b.t = t
		b.nav("info")
		b.do("info", waitText("#members-list", "dev"), waitText("#agents-list", "ALIVE"), waitJS(`document.querySelector("#info-license").textContent.length > 0`))
		b.shot("31-information")
	})

	step("maintenance recalculates usage and shows what it fixed", func(t *testing.T) {
		b.t = t
		b.nav("maintenance")
		b.shot("32-maintenance")
		b.do("recalculate", click("#recalculate-usage"), waitText("#recalculate-result", "Checked 1 agents"))
		b.shot("33-maintenance-recalculated")
	})

	step("a superadmin approves an agent that joined with a token without auto-approve", func(t *testing.T) {
		b.t = t
		var tok api.AgentToken
		adminDo(t, s, admin, http.MethodPost, "/v1/agents/tokens", map[string]any{"uses": 1}, http.StatusCreated).JSON(t, &tok)
		id := registerAgent(t, s, tok.Token, "127.0.0.1:2")
		b.nav("agents")
		approve := `button[data-action="approve"][data-agent="` + id + `"]`
		b.do("awaiting approval", waitText("#agents-list", "waiting for approval"), chromedp.WaitVisible(chromedp.CSS(approve)))
		b.shot("33b-agent-awaiting-approval")
		b.do("approve", click(approve), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
			waitText("#confirm-dialog", "Once approved it may run users' sessions"), click("#confirm-ok"),
			chromedp.WaitNotPresent(chromedp.CSS(approve)))
		var got api.Agent
		apiGet(t, s, admin, "/v1/agents/"+id, &got)
		if !got.Approved {
			t.Fatalf("after APPROVE the agent is %+v", got)
		}
	})

	step("a group folder made by the admin is listed for a member as R, without invitation", func(t *testing.T) {
		b.t = t
		b.nav("data")
		b.do("new folder", click("#new-folder"), chromedp.WaitVisible(chromedp.CSS("#folder-dialog")),
			waitJS(`document.querySelector("#folder-host").value === "local"`),
			// A user folder takes no permission and no group.
			waitJS(`document.querySelector("#folder-group").closest(".field").hidden && document.querySelector("#folder-permission").closest(".field").hidden`),
			typeIn("#folder-name", "team-data"), choose("#folder-type", "group"),
			waitJS(`!document.querySelector("#folder-group").closest(".field").hidden`),
			choose("#folder-group", "default/lab"), choose("#folder-permission", "ro"))
		b.shot("34-new-group-folder")
		if opts := b.eval(`[...document.querySelector("#folder-permission").options].map(o => o.value).join(",")`); opts != "ro,rw" {
			t.Errorf("group folder permissions offered %q, want ro,rw (what the API accepts)", opts)
		}
		b.do("create", click("#folder-submit"), chromedp.WaitNotPresent(chromedp.CSS("#folder-dialog")), waitText("#folders-list", "team-data"))
		b.shot("35-data-storage-admin")
		b.logout()
		b.login(bobEmail, bobPassword)
		b.nav("data")
		b.do("member sees it", waitText("#folders-list", "team-data"),
			waitJS(rowWith("folders-list", "team-data")+`?.querySelector('[data-col="Permission"]').textContent.trim() === "R"`),
			waitText("#invitations-list", "No invitations"))
		b.shot("36-data-storage-member")
		var fs api.List[api.Folder]
		apiGet(t, s, testcluster.Login(t, s, bobEmail, bobPassword), "/v1/folders", &fs)
		if len(fs.Items) != 1 || fs.Items[0].Name != "team-data" || fs.Items[0].Permission != api.PermRO || fs.Items[0].Group != "lab" {
			t.Fatalf("bob's folders in the API: %+v", fs.Items)
		}
	})

	step("a user folder shared by invitation, accepted, then revoked", func(t *testing.T) {
		b.t = t
		b.do("new user folder", click("#new-folder"), chromedp.WaitVisible(chromedp.CSS("#folder-dialog")),
			waitJS(`document.querySelectorAll("#folder-type option").length === 1`),
			waitJS(`document.querySelector("#folder-permission").closest(".field").hidden`),
			typeIn("#folder-name", "bob-data"), click("#folder-submit"), chromedp.WaitNotPresent(chromedp.CSS("#folder-dialog")),
			// Newest first.
			waitText("#folders-list tbody tr:first-child", "bob-data"))
		b.do("share", click(`button[data-action="share"][data-folder="bob-data"]`), chromedp.WaitVisible(chromedp.CSS("#invite-dialog")))
		if opts := b.eval(`[...document.querySelector("#invite-permission").options].map(o => o.value).join(",")`); opts != "ro,rw" {
			t.Errorf("invitation permissions offered %q, want ro,rw", opts)
		}
		b.do("invite carol", typeIn("#invitee", carolEmail), choose("#invite-permission", "rw"), click("#invite-submit"),
			chromedp.WaitNotPresent(chromedp.CSS("#invite-dialog")),
			// The table shows it at once, without a reload.
			waitJS(rowWith("invitations-list", carolEmail)+`?.textContent.includes("pending")`))
		b.shot("37-invitation-sent")
		b.logout()
		b.login(carolEmail, carolPassword)
		b.nav("data")
		b.do("accept", waitText("#invitations-list", bobEmail), clickJS(rowWith("invitations-list", "bob-data")+`?.querySelector('[data-action="accept"]')`),
			waitJS(rowWith("folders-list", "bob-data")+`?.querySelector('[data-col="Permission"]').textContent.trim() === "RW"`))
		b.shot("38-invitation-accepted")
		carol := testcluster.Login(t, s, carolEmail, carolPassword)
		var fs api.List[api.Folder]
		apiGet(t, s, carol, "/v1/folders", &fs)
		if len(fs.Items) != 1 || fs.Items[0].Name != "bob-data" || fs.Items[0].Permission != api.PermRW {
			t.Fatalf("carol's folders in the API after accepting: %+v", fs.Items)
		}
		b.logout()
		b.login(bobEmail, bobPassword)
		b.nav("data")
		b.do("revoke", waitJS(rowWith("invitations-list", carolEmail)+`?.textContent.includes("accepted")`),
			clickJS(rowWith("invitations-list", carolEmail)+`?.querySelector('[data-action="revoke"]')`),
			chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")), click("#confirm-ok"),
			waitJS(`!document.querySelector("#invitations-list").textContent.includes("carol@example.com")`))
		apiGet(t, s, carol, "/v1/folders", &fs)
		if len(fs.Items) != 0 {
			t.Fatalf("carol still has folders after the revoke: %+v", fs.Items)
		}
	})

	step("a user changes their own password", func(t *testing.T) {
		b.t = t
		b.do("banner", waitText("#app", "An administrator asked you to change your password"))
		b.do("open", click("#change-password"), chromedp.WaitVisible(chromedp.CSS("#password-dialog")),
			typeIn("#old-password", bobPassword), typeIn("#new-password", "short"), typeIn("#new-password-confirm", "short"),
			click("#password-submit"), waitText(fieldError("new-password"), "new_password must be at least 8 characters long"))
		b.shot("39-change-password")
		b.do("change", typeIn("#new-password", "Bob-pass-2!"), typeIn("#new-password-confirm", "Bob-pass-2!"), click("#password-submit"),
			chromedp.WaitNotPresent(chromedp.CSS("#password-dialog")),
			waitJS(`!document.querySelector("#app").textContent.includes("An administrator asked you to change your password")`))
		b.logout()
		b.login(bobEmail, "Bob-pass-2!")
	})

	step("a domain admin sees the resource policies and is offered no change", func(t *testing.T) {
		b.t = t
		b.logout()
		b.login(danaEmail, danaPassword)
		b.nav("users")
		b.do("policies tab", click("#tab-policies"),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="cpu"]`, "2"),
			waitText("#policies-read-only", "only a superadmin may create, change or delete them"),
			waitJS(`!document.querySelector("#create-policy") && !document.querySelector("#policies-list [data-action]")`))
		b.shot("40-policies-domain-admin")
	})

	step("a monitor sees the administration pages read-only", func(t *testing.T) {
		b.t = t
		b.logout()
		b.login(monaEmail, monaPassword)
		b.do("menu", waitText("#admin-menu .menu-note", "read-only"))
		b.nav("users")
		b.do("users, nothing to change", waitText("#users-list", bobEmail), waitText("#page", "You are a monitor"),
			waitJS(`!document.querySelector("#create-user") && !document.querySelector('#users-list [data-action="update"]') && !document.querySelector('#users-list [data-action="deactivate"]')`),
			chromedp.WaitVisible(chromedp.CSS(`#users-list [data-action="details"]`)))
		b.shot("41-monitor-users")
		b.nav("groups")
		b.do("groups, nothing to change", waitText("#groups-list", "lab"),
			waitJS(`!document.querySelector("#create-group") && !document.querySelector('#groups-list [data-action="update"]')`))
		b.nav("agents")
		b.do("agents, no switch", waitText("#agents-list", "fake-node"), waitJS(`document.querySelector('#agents-list input[role="switch"]').disabled`))
		b.shot("42-monitor-agents")
	})

	step("logging out returns to the login page", func(t *testing.T) {
		b.t = t
		b.logout()
		b.shot("43-logged-out")
		// The login token is gone: the cookie no longer authenticates.
		b.do("whoami after logout", waitJS(`fetch("/v1/auth/whoami").then(r => r.status === 401)`))
	})
}
