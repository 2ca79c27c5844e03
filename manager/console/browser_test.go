package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// The browser tests drive Debian's chromium (scripts/install-deps.sh)
// through the console against a real in-process manager. Without chromium
// they skip, except with CI=true, where that is a failure. Screenshots of
// every page go to $BERTH_SCREENSHOTS when set, else to the test's artifact
// directory (go test -artifacts -outputdir DIR keeps them; without the
// flag it is a temporary directory).

const (
	agentToken = "console-test-agent-token"
	// stepTimeout bounds every browser step: a two-core CI machine shared
	// with other builds is slow, but nothing the console does takes this long.
	stepTimeout = 45 * time.Second
)

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "the browser tests need chromium (Debian package chromium, scripts/install-deps.sh)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
	return ""
}

// tab is one browser tab on the console, with the helpers the steps use.
type tab struct {
	t         *testing.T
	ctx       context.Context
	base      string
	shots     string
	downloads string
	mu        sync.Mutex
	errors    []string
}

func startBrowser(t *testing.T, base string) *tab {
	exe := chromiumPath(t)
	shots := os.Getenv("BERTH_SCREENSHOTS")
	if shots == "" {
		shots = t.ArtifactDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		// Chromium refuses to run as root with its sandbox on; the page
		// under test is our own.
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	tb := &tab{t: t, ctx: ctx, base: base, shots: shots, downloads: t.TempDir()}
	// The first Run starts the browser; it must not carry a timeout (that
	// would end the browser with it), so the start is bounded separately.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("chromium did not start within 60s")
	}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.errors = append(tb.errors, (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.errors {
			t.Errorf("uncaught JavaScript exception in the console: %s", e)
		}
	})
	tb.do("allow downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: tb.downloads,
		})
		return err
	}))
	t.Logf("screenshots in %s", shots)
	return tb
}

// do runs steps within stepTimeout; on failure it saves a screenshot.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

func (b *tab) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(b.shots, strings.Trim(unsafeName.ReplaceAllString(name, "-"), "-")+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
	}
}

func js(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// waitJS waits until the expression is truthy.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout))
}

// waitText waits until the first element matching css contains text.
func waitText(css, text string) chromedp.Action[chromedp.Void] {
	return waitJS(fmt.Sprintf(`(document.querySelector(%s)?.textContent || "").includes(%s)`, js(css), js(text)))
}

func click(css string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(css)) }

// setValue sets an input's value the way a script would (no key events);
// the console reads values when a button is pressed.
func setValue(css, v string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(css)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = %s`, js(css), js(v))))
}

func (b *tab) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.shot("failed-eval")
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// fieldError is the error line under the field of input id.
func fieldError(id string) string {
	return fmt.Sprintf(`#%s ~ .field-error`, id)
}

func (b *tab) login(email, password string) {
	b.t.Helper()
	b.do("log in as "+email,
		chromedp.WaitVisible(chromedp.CSS("#login-email")),
		setValue("#login-email", email), setValue("#login-password", password),
		click("#login-submit"),
		waitText("#whoami", email))
}

func (b *tab) logout() {
	b.t.Helper()
	b.do("log out", click("#logout"), chromedp.WaitVisible(chromedp.CSS("#login-email")))
}

func (b *tab) open(page string) {
	b.t.Helper()
	b.do("open "+page, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %s`, js("#/"+page))), waitJS(`document.querySelector("#page") && !document.querySelector("#page").dataset.loading`))
}

// fakeAgent registers an agent of 8 cores and 16 GiB through the public
// agent API, so the resource indicator has a cluster to show.
func fakeAgent(t *testing.T, s *server.Server) {
	t.Helper()
	registerFakeAgent(t, s, agentToken, "127.0.0.1:1")
}

// registerFakeAgent registers an agent of 8 cores and 16 GiB at addr with
// the join token and returns its id.
func registerFakeAgent(t *testing.T, s *server.Server, token, addr string) string {
	t.Helper()
	var capacity slots.Slots
	if err := json.Unmarshal([]byte(`{"cpu":8,"mem":17179869184}`), &capacity); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(api.AgentRegister{Address: addr, Capacity: capacity, Version: "test",
		Images: []api.Image{{Name: "berth/base:latest", Digest: "sha256:00", Size: 1 << 20}},
		Node:   api.NodeInfo{Hostname: "fake-node", Arch: "amd64", CPUs: 8, MemoryBytes: 16 << 30}})
	req, _ := http.NewRequest(http.MethodPost, testcluster.URL(s)+"/v1/agents/register", strings.NewReader(string(body)))
	req.Header.Set(api.AgentTokenHeader, token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out api.AgentRegistered
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("register the fake agent: %d", resp.StatusCode)
	}
	return out.ID
}

func adminDo(t *testing.T, s *server.Server, token, method, path string, body any, want int) *testcluster.Response {
	t.Helper()
	r := testcluster.Do(t, method, testcluster.URL(s)+path, token, body)
	if r.Status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, want)
	}
	return r
}

const (
	bobEmail     = "bob@example.com"
	bobPassword  = "Bob-pass-1"
	danaEmail    = "dana@example.com"
	danaPassword = "Dana-pass-1"
)

// TestConsoleAdminWalkthroughs follows the reference manual's admin
// walkthroughs in a real browser. The steps build on each other (the user
// created in one logs in later), so they run in order in one browser.
func TestConsoleAdminWalkthroughs(t *testing.T) {
	chromiumPath(t)
	c := testcluster.StartDev(t, func(cfg *server.Config) {
		cfg.AgentToken = agentToken
		// The fake agent sends no heartbeats; keep it ALIVE for the test.
		cfg.HeartbeatTimeout = 10 * time.Minute
		cfg.FolderHosts = map[string]string{"local": t.TempDir()}
	})
	s := c.Servers[0]
	fakeAgent(t, s)
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	// Carol is deactivated through the console; the gardener policy is
	// held by one of her keypairs, so deleting it must fail.
	adminDo(t, s, admin, http.MethodPost, "/v1/resource-policies", map[string]any{"name": "gardener"}, http.StatusCreated)
	adminDo(t, s, admin, http.MethodPost, "/v1/users", map[string]any{"email": "carol@example.com", "username": "carol",
		"password": "Carol-pass-1", "resource_policy": "gardener"}, http.StatusCreated)
	adminDo(t, s, admin, http.MethodPost, "/v1/domains/default/groups", map[string]any{"name": "lab"}, http.StatusCreated)
	adminDo(t, s, admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{"allowed_vfolder_hosts": []string{"local"}}, http.StatusOK)
	// Dana administers the default domain; resource policies are the cluster's.
	adminDo(t, s, admin, http.MethodPost, "/v1/users", map[string]any{"email": danaEmail, "username": "dana",
		"password": danaPassword, "role": api.RoleAdmin}, http.StatusCreated)

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
		b.do("wrong password", setValue("#login-email", testcluster.AdminEmail), setValue("#login-password", "not-the-password-1!"),
			click("#login-submit"), waitText("#login-message", "Wrong email or password."))
	})

	step("an admin logs in and sees the Administration menu", func(t *testing.T) {
		b.t = t
		b.login(testcluster.AdminEmail, testcluster.AdminPassword)
		b.do("admin menu", chromedp.WaitVisible(chromedp.CSS("#admin-menu")), waitText("#admin-menu", "Users"),
			waitText("#admin-menu", "Maintenance"), waitText("#admin-menu", "Information"))
		b.shot("02-sessions-admin")
	})

	step("create user shows each validation message under its field", func(t *testing.T) {
		b.t = t
		b.open("users")
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

		b.do("no confirmation", setValue("#new-user-email", bobEmail), setValue("#new-user-username", "bob"),
			setValue("#new-user-password", bobPassword), click("#create-user-submit"),
			waitText(fieldError("new-user-confirm"), "Confirm the password: type it again."),
			waitJS(fmt.Sprintf(`document.querySelector(%s).textContent === ""`, js(fieldError("new-user-email")))))
		b.shot("06-create-user-no-confirmation")

		b.do("confirmation differs", setValue("#new-user-confirm", bobPassword+"x"), click("#create-user-submit"),
			waitText(fieldError("new-user-confirm"), "The passwords do not match."))
		b.shot("07-create-user-mismatch")

		b.do("password policy", setValue("#new-user-password", "short"), setValue("#new-user-confirm", "short"), click("#create-user-submit"),
			waitText(fieldError("new-user-password"), "password must be at least 8 characters long"),
			waitText(fieldError("new-user-password"), "password must contain at least one digit"),
			waitText(fieldError("new-user-password"), "password must contain at least one special character"))
		b.shot("08-create-user-password-policy")

		b.do("duplicate email", setValue("#new-user-email", "carol@example.com"), setValue("#new-user-password", bobPassword),
			setValue("#new-user-confirm", bobPassword), click("#create-user-submit"),
			waitText(fieldError("new-user-email"), "carol@example.com"))
	})

	step("a valid user is created and shown with domain and groups", func(t *testing.T) {
		b.t = t
		b.do("create bob", setValue("#new-user-email", bobEmail), click("#create-user-submit"),
			chromedp.WaitVisible(chromedp.CSS("#user-created-dialog")), waitText("#created-access-key", "AK"))
		b.shot("09-user-created")
		b.do("close", click("#user-created-ok"), waitText("#users-list", bobEmail))
		adminDo(t, s, admin, http.MethodPost, "/v1/domains/default/groups/lab/members", map[string]any{"add": []string{bobEmail}}, http.StatusOK)
		b.do("details", click(`button[data-action="details"][data-user="`+bobEmail+`"]`),
			chromedp.WaitVisible(chromedp.CSS("#user-details-dialog")),
			waitText(`#user-details-dialog dd[data-field="Domain"]`, "default"),
			waitText(`#user-details-dialog dd[data-field="Groups"]`, "lab"))
		b.shot("10-user-details")
		b.do("close details", click("#user-details-close"), chromedp.WaitNotPresent(chromedp.CSS("#user-details-dialog")))
	})

	step("the email search box filters the list", func(t *testing.T) {
		b.t = t
		b.do("search", chromedp.SendKeys(chromedp.CSS("#search-email"), "bob@"),
			waitJS(`document.querySelectorAll("#users-list tbody tr").length === 1`), waitText("#users-list tbody", bobEmail))
		b.do("clear search", setValue("#search-email", ""), chromedp.SendKeys(chromedp.CSS("#search-email"), "@"),
			waitText("#users-list tbody", testcluster.AdminEmail))
	})

	step("update dialog shows the user id disabled and the two switches", func(t *testing.T) {
		b.t = t
		b.do("open update", click(`button[data-action="update"][data-user="`+bobEmail+`"]`), chromedp.WaitVisible(chromedp.CSS("#update-user-dialog")),
			waitJS(`document.querySelector("#edit-user-email").disabled`), waitJS(`document.querySelector("#user-active").checked`),
			waitJS(`!document.querySelector("#user-need-password-change").checked`))
		b.shot("11-update-user")
		b.do("set full name and require a password change", setValue("#edit-user-fullname", "Bob Builder"),
			click("#user-need-password-change"), click("#update-user-submit"), chromedp.WaitNotPresent(chromedp.CSS("#update-user-dialog")),
			waitText("#users-list", "Bob Builder"))
		var u api.User
		adminDo(t, s, admin, http.MethodGet, "/v1/users/"+bobEmail, nil, http.StatusOK).JSON(t, &u)
		if u.FullName != "Bob Builder" || !u.NeedPasswordChange {
			t.Fatalf("after the update: full_name %q need_password_change %v", u.FullName, u.NeedPasswordChange)
		}
	})

	step("deactivating a user moves it to the Inactive tab and it cannot log in", func(t *testing.T) {
		b.t = t
		b.do("trash", click(`button[data-action="deactivate"][data-user="carol@example.com"]`), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
		b.shot("12-deactivate-confirm")
		b.do("okay", click("#confirm-ok"), waitJS(`!document.querySelector("#users-list").textContent.includes("carol@example.com")`))
		b.do("inactive tab", click("#status-inactive"), waitText("#users-list", "carol@example.com"))
		b.shot("13-users-inactive")
		b.logout()
		b.do("inactive login", setValue("#login-email", "carol@example.com"), setValue("#login-password", "Carol-pass-1"),
			click("#login-submit"), waitText("#login-message", "This account is inactive"))
		b.shot("14-login-inactive")
	})

	indicator := func(t *testing.T, cpu, mem string) {
		t.Helper()
		b.open("sessions")
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
		b.login(bobEmail, bobPassword)
		b.do("no admin menu", waitJS(`!document.querySelector("#admin-menu")`))
		indicator(t, "8", "16")
		b.shot("15-start-dialog-no-limit")
		b.do("cancel", click("#start-dialog footer button.secondary"), chromedp.WaitNotPresent(chromedp.CSS("#start-dialog")))
		b.shot("16-resource-indicator-no-limit")
		b.do("admin page by URL", chromedp.Evaluate[chromedp.Void](`location.hash = "#/users"`), waitText("#page", "for administrators only"),
			waitJS(`!document.querySelector("#users-list")`))
		b.shot("17-user-types-admin-url")
		b.logout()
	})

	step("the admin limits the default policy", func(t *testing.T) {
		b.t = t
		b.login(testcluster.AdminEmail, testcluster.AdminPassword)
		b.do("policies tab", chromedp.Evaluate[chromedp.Void](`location.hash = "#/users?tab=policies"`),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="cpu"]`, "∞"),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="mem"]`, "∞"),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="cuda.shares"]`, "∞"))
		b.shot("18-resource-policies")
		b.do("update default", click(`button[data-action="update"][data-policy="default"]`), chromedp.WaitVisible(chromedp.CSS("#policy-dialog")),
			waitJS(`document.querySelector("#policy-name").disabled`),
			// Root in containers is off until an administrator allows it.
			waitJS(`document.querySelector("#policy-allow-root") && !document.querySelector("#policy-allow-root").checked`))
		b.do("uncheck unlimited", click("#policy-cpu-unlimited"), click("#policy-mem-unlimited"), click("#policy-cuda-shares-unlimited"),
			setValue("#policy-cpu", "600"), setValue("#policy-mem", "4"), setValue("#policy-cuda-shares", "1"), click("#policy-submit"),
			waitText(fieldError("policy-cpu"), "Must be from 0 to 512."))
		b.shot("19-update-policy")
		b.do("limit", setValue("#policy-cpu", "2"), click("#policy-submit"), chromedp.WaitNotPresent(chromedp.CSS("#policy-dialog")),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="cpu"]`, "2"),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="mem"]`, "4 GiB"),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="cuda.shares"]`, "1"))
		b.shot("20-policy-updated")
	})

	step("the user's indicator and sliders stop at the new limit", func(t *testing.T) {
		b.t = t
		b.logout()
		b.login(bobEmail, bobPassword)
		indicator(t, "2", "4")
		b.shot("21-start-dialog-limit")
		b.do("cancel", click("#start-dialog footer button.secondary"), chromedp.WaitNotPresent(chromedp.CSS("#start-dialog")))
		b.do("fGPU limit", waitText(`[data-slot="cuda.shares"] .gauge-note`, "policy limit 1"))
		b.shot("22-resource-indicator-limit")
		b.do("start a session", click("#start-session"), chromedp.WaitVisible(chromedp.CSS("#start-dialog")),
			setValue("#session-name", "walkthrough"), click("#start-submit"), chromedp.WaitNotPresent(chromedp.CSS("#start-dialog")),
			waitText("#sessions-list", "walkthrough"), waitText("#indicator-cpu-used", "1"))
		b.shot("22a-session-started")
		b.do("terminate it", click(`#sessions-list button[data-action="terminate"]`), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
			click("#confirm-ok"), chromedp.WaitNotPresent(chromedp.CSS(`#sessions-list button[data-action="terminate"]`)))
		var list api.List[api.Session]
		adminDo(t, s, admin, http.MethodGet, "/v1/sessions?all=true", nil, http.StatusOK).JSON(t, &list)
		if len(list.Items) != 1 || (list.Items[0].Status != api.SessionTerminating && list.Items[0].Status != api.SessionCancelled) {
			t.Fatalf("after terminate in the console the sessions are %+v, want one TERMINATING or CANCELLED", list.Items)
		}
		b.logout()
		b.login(testcluster.AdminEmail, testcluster.AdminPassword)
		b.do("back to the policies", chromedp.Evaluate[chromedp.Void](`location.hash = "#/users?tab=policies"`), waitText("#policies-list", "gardener"))
	})

	step("deleting a policy in use shows the refusal", func(t *testing.T) {
		b.t = t
		b.do("delete gardener", click(`button[data-action="delete"][data-policy="gardener"]`), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
		b.shot("23-policy-delete-confirm")
		b.do("okay", click("#confirm-ok"), waitText("#policies-message", "Cannot delete gardener"), waitText("#policies-list", "gardener"))
		b.shot("24-policy-in-use")
	})

	step("the credentials tab lists keypairs with their resources", func(t *testing.T) {
		b.t = t
		b.do("credentials", click("#tab-credentials"), waitText("#credentials-list", bobEmail), waitText("#credentials-list", "default"))
		b.shot("25-credentials")
	})

	step("export CSV of the users tab downloads the file", func(t *testing.T) {
		b.t = t
		b.do("users tab", click("#tab-users"), waitText("#users-list", bobEmail))
		b.do("... menu", click("#tab-more"), click("#export-csv"), chromedp.WaitVisible(chromedp.CSS("#export-dialog")))
		b.do("too long a name", setValue("#export-filename", strings.Repeat("x", 256)), click("#export-submit"),
			waitText(fieldError("export-filename"), "at most 255 characters"))
		b.shot("26-export-csv-dialog")
		b.do("export", setValue("#export-filename", "people"), click("#export-submit"), chromedp.WaitNotPresent(chromedp.CSS("#export-dialog")))
		file := filepath.Join(b.downloads, "people.csv")
		var data []byte
		testcluster.Eventually(t, stepTimeout, func() error {
			var err error
			data, err = os.ReadFile(file)
			if err == nil && !strings.HasSuffix(string(data), "\r\n") {
				return fmt.Errorf("%s is still being written", file)
			}
			return err
		})
		lines := strings.Split(strings.TrimSpace(string(data)), "\r\n")
		if lines[0] != "email,username,full_name,role,status,domain,groups,need_password_change,created_at" {
			t.Fatalf("header row %q", lines[0])
		}
		if !strings.Contains(string(data), bobEmail+",bob,Bob Builder,user,active,default,lab,true,") {
			t.Fatalf("no row for bob in:\n%s", data)
		}
		if strings.Contains(string(data), "carol@example.com") {
			t.Fatalf("the active tab's export lists the inactive carol:\n%s", data)
		}
	})

	step("the admin exports sessions from the ... menu right of OTHERS", func(t *testing.T) {
		b.t = t
		b.open("sessions")
		b.do("export dialog", click("#sessions-more"), click("#export-sessions"), chromedp.WaitVisible(chromedp.CSS("#export-dialog")),
			waitText("#export-dialog", "At most 255 characters"))
		b.shot("27-export-sessions-dialog")
		b.do("close", click("#export-dialog footer button.secondary"), chromedp.WaitNotPresent(chromedp.CSS("#export-dialog")))
	})

	step("information shows version, licence, members and agents", func(t *testing.T) {
		b.t = t
		b.open("info")
		b.do("info", waitText("#members-list", "dev"), waitText("#agents-list", "127.0.0.1:1"), waitJS(`document.querySelector("#info-license").textContent.length > 0`))
		b.shot("28-information")
	})

	step("a superadmin approves an agent that joined with a token without auto-approve", func(t *testing.T) {
		b.t = t
		var tok api.AgentToken
		adminDo(t, s, admin, http.MethodPost, "/v1/agents/tokens", map[string]any{"uses": 1}, http.StatusCreated).JSON(t, &tok)
		id := registerFakeAgent(t, s, tok.Token, "127.0.0.1:2")
		b.open("maintenance") // the info page is open: leave it so it loads afresh
		b.open("info")
		b.do("awaiting approval", waitText("#agents-list", id), waitText("#page", "1 agent awaits approval"),
			chromedp.WaitVisible(chromedp.CSS("#approve-"+id)))
		b.shot("28b-agent-awaiting-approval")
		b.do("approve", click("#approve-"+id), chromedp.WaitNotPresent(chromedp.CSS("#approve-"+id)),
			waitJS(`!document.querySelector("#page").textContent.includes("awaits approval")`))
		var got api.Agent
		adminDo(t, s, admin, http.MethodGet, "/v1/agents/"+id, nil, http.StatusOK).JSON(t, &got)
		if !got.Approved {
			t.Fatalf("after APPROVE the agent is %+v", got)
		}
	})

	step("maintenance recalculates usage and shows what it fixed", func(t *testing.T) {
		b.t = t
		b.open("maintenance")
		b.shot("29-maintenance")
		b.do("recalculate", click("#recalculate-usage"), waitText("#recalculate-result", "Checked 2 agents"))
		b.shot("30-maintenance-recalculated")
	})

	step("a group folder made by the admin is listed for a member as R", func(t *testing.T) {
		b.t = t
		var hosts any
		adminDo(t, s, admin, http.MethodGet, "/v1/folder-hosts", nil, http.StatusOK).JSON(t, &hosts)
		if m, ok := hosts.(map[string]any); ok {
			hosts = m["items"]
		}
		if l, _ := hosts.([]any); len(l) == 0 {
			t.Fatalf("GET /v1/folder-hosts offers the admin no host (%v): give the test cluster a folder host and allow it in the default policy", hosts)
		}
		b.open("data")
		b.do("new folder", click("#new-folder"), chromedp.WaitVisible(chromedp.CSS("#folder-dialog")),
			waitJS(`document.querySelector("#folder-host").value !== ""`),
			setValue("#folder-name", "team-data"), setValue("#folder-type", "group"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector("#folder-type").dispatchEvent(new Event("change"))`),
			setValue("#folder-group", "lab"), setValue("#folder-permission", "ro"))
		b.shot("31-new-group-folder")
		b.do("create", click("#folder-submit"), chromedp.WaitNotPresent(chromedp.CSS("#folder-dialog")), waitText("#folders-list", "team-data"))
		b.shot("32-data-storage-admin")
		b.logout()
		b.login(bobEmail, bobPassword)
		b.open("data")
		b.do("member sees it", waitText("#folders-list", "team-data"),
			waitJS(`[...document.querySelectorAll("#folders-list tbody tr")].some(r => r.textContent.includes("team-data") && r.querySelector('[data-col="Permission"]').textContent.trim() === "R")`))
		b.shot("33-data-storage-member")
	})

	step("a user changes their own password", func(t *testing.T) {
		b.t = t
		if !strings.Contains(b.eval(`document.querySelector("#whoami")?.textContent || ""`), bobEmail) {
			b.logout()
			b.login(bobEmail, bobPassword)
		}
		b.do("banner", waitText("#app", "An administrator asked you to change your password"))
		b.do("open", click("#change-password"), chromedp.WaitVisible(chromedp.CSS("#password-dialog")),
			setValue("#old-password", bobPassword), setValue("#new-password", "short"), setValue("#new-password-confirm", "short"),
			click("#password-submit"), waitText(fieldError("new-password"), "new_password must be at least 8 characters long"))
		b.shot("35-change-password")
		b.do("change", setValue("#new-password", "Bob-pass-2!"), setValue("#new-password-confirm", "Bob-pass-2!"), click("#password-submit"),
			chromedp.WaitNotPresent(chromedp.CSS("#password-dialog")),
			waitJS(`!document.querySelector("#app").textContent.includes("An administrator asked you to change your password")`))
		b.logout()
		b.login(bobEmail, "Bob-pass-2!")
	})

	step("a domain admin sees the resource policies and is offered no change", func(t *testing.T) {
		b.t = t
		b.logout()
		b.login(danaEmail, danaPassword)
		b.do("policies tab", chromedp.Evaluate[chromedp.Void](`location.hash = "#/users?tab=policies"`),
			waitText(`#policies-list .resources[data-policy="default"] [data-slot="cpu"]`, "2"),
			waitText("#policies-read-only", "only a superadmin may create, change or delete them"),
			waitJS(`!document.querySelector("#create-policy") && !document.querySelector("#policies-list [data-action]")`))
		b.shot("36-policies-domain-admin")
	})

	step("logging out returns to the login page", func(t *testing.T) {
		b.t = t
		b.logout()
		b.shot("37-logged-out")
		// The login token is gone: the cookie no longer authenticates.
		b.do("whoami after logout", waitJS(`fetch("/v1/auth/whoami").then(r => r.status === 401)`))
	})
}
