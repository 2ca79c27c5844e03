package console_test

import (
	"bytes"
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
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
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
	// laptopWidth is the screen width the console's tables must fit.
	laptopWidth = 1366
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
		// A laptop screen: every page must fit it without scrolling sideways.
		chromedp.WindowSize(laptopWidth, 860),
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

// shot saves a screenshot of the page as it is; outside failures it also
// checks that the page fits the laptop screen: nothing wider than the
// window, so no table scrolls sideways.
func (b *tab) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if !strings.HasPrefix(name, "failed") {
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
			const w = document.documentElement.clientWidth;
			if (document.documentElement.scrollWidth > w) return "the page is " + document.documentElement.scrollWidth + " px wide";
			for (const t of document.querySelectorAll("table, dialog[open]")) {
				const r = t.getBoundingClientRect();
				if (r.right > w + 1) return (t.id || t.tagName) + " reaches " + Math.round(r.right) + " px";
			}
			return "";
		})()`))
		if err != nil {
			b.t.Logf("width check of %s: %v", name, err)
		} else if wide != "" {
			b.t.Errorf("%s does not fit %d px: %s", name, laptopWidth, wide)
		}
	}
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

// click clicks css with the mouse, as a person does. A list that is drawn
// again between chromedp finding the element and clicking it leaves
// chromedp holding a node that is gone ("Could not find node with given
// id"): it finds the element again, as a person's second look would,
// until the step's deadline.
func click(css string) chromedp.Action[chromedp.Void] {
	c := chromedp.Click(chromedp.CSS(css))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for {
			v, err := c(ctx, t)
			if err == nil || !strings.Contains(err.Error(), "Could not find node with given id") {
				return v, err
			}
			select {
			case <-ctx.Done():
				return v, err
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// clickUntil clicks css and waits for cond (a JavaScript expression);
// when cond does not hold within a few seconds it clicks again, until the
// step's deadline. A list that refreshes itself can redraw the row between
// chromedp finding the link and the mouse reaching it: the click then
// lands on a row that is gone and nothing happens, and a person clicks
// again.
func clickUntil(css, cond string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for {
			if _, err := click(css)(ctx, t); err != nil {
				return chromedp.Void{}, err
			}
			wait, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := waitJS(cond)(wait, t)
			cancel()
			if err == nil || ctx.Err() != nil {
				return chromedp.Void{}, err
			}
		}
	}
}

// typeIn empties an input and types text into it, key by key, as a
// person does.
func typeIn(css, text string) chromedp.Action[chromedp.Void] {
	// chromedp.Clear resets the value attribute, not what was typed.
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(css)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = ""`, js(css))),
		chromedp.SendKeys(chromedp.CSS(css), text))
}

// setValue puts a long value into an input at once (typing 256 characters
// key by key only slows the test); then an input event, as typing sends.
func setValue(css, v string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(css)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = %s; e.dispatchEvent(new Event("input", { bubbles: true })); })()`, js(css), js(v))))
}

// choose picks an option of a select, as a person does with the mouse:
// the value changes and the select says so (change).
func choose(css, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(css)),
		waitJS(fmt.Sprintf(`[...document.querySelector(%s).options].some(o => o.value === %s)`, js(css), js(value))),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = %s; e.dispatchEvent(new Event("change", { bubbles: true })); })()`, js(css), js(value))))
}

// rowWith is the CSS-free test of a table row: the first row of table id
// whose text contains text.
func rowWith(table, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#%s tbody tr")].find(r => r.textContent.includes(%s))`, table, js(text))
}

// clickJS clicks the element the expression finds (a row's button).
func clickJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(waitJS(expr), chromedp.Evaluate[chromedp.Void](`(`+expr+`).click()`))
}

func (b *tab) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
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
		typeIn("#login-email", email), typeIn("#login-password", password),
		click("#login-submit"),
		waitText("#whoami", email), pageLoaded())
}

func (b *tab) logout() {
	b.t.Helper()
	b.do("log out", click("#logout"), chromedp.WaitVisible(chromedp.CSS("#login-email")))
}

// pageLoaded waits until the page on screen has drawn what it loads.
func pageLoaded() chromedp.Action[chromedp.Void] {
	return waitJS(`document.querySelector("#page")?.dataset.loaded === location.hash`)
}

// nav opens a page from the sidebar, as a person does.
func (b *tab) nav(key string) {
	b.t.Helper()
	b.do("open "+key, click("#nav-"+key), waitJS(fmt.Sprintf(`location.hash.startsWith(%s)`, js("#/"+key))), pageLoaded())
}

// open goes to an address of the console, as typing it in the address bar
// does (for pages the sidebar does not link, and deep links).
func (b *tab) open(page string) {
	b.t.Helper()
	b.do("open "+page, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %s`, js("#/"+page))),
		waitJS(fmt.Sprintf(`location.hash === %s`, js("#/"+page))), pageLoaded())
}

func adminDo(t *testing.T, s *server.Server, token, method, path string, body any, want int) *testcluster.Response {
	t.Helper()
	r := testcluster.Do(t, method, testcluster.URL(s)+path, token, body)
	if r.Status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, want)
	}
	return r
}

// registerAgent registers an agent of 8 cores and 16 GiB at addr with the
// join token through the public agent API and returns its id; it never
// heartbeats, which is all a step about its record needs.
func registerAgent(t *testing.T, s *server.Server, token, addr string) string {
	t.Helper()
	return registerAgentAs(t, s, token, addr, false)
}

// registerAgentAs is registerAgent of an agent that says it is simulated,
// or not.
func registerAgentAs(t *testing.T, s *server.Server, token, addr string, simulated bool) string {
	t.Helper()
	var capacity slots.Slots
	if err := json.Unmarshal([]byte(`{"cpu":8,"mem":17179869184}`), &capacity); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(api.AgentRegister{Address: addr, Capacity: capacity, Version: "test",
		Node: api.NodeInfo{Hostname: "fake-node-2", Arch: "amd64", CPUs: 8, MemoryBytes: 16 << 30}, Simulated: simulated})
	req, err := http.NewRequest(http.MethodPost, testcluster.URL(s)+"/v1/agents/register", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(api.AgentTokenHeader, token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out api.AgentRegistered
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("register an agent: %d", resp.StatusCode)
	}
	return out.ID
}

// targets are the browser's open pages.
func (b *tab) targets() []*target.Info {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		b.t.Fatalf("list the browser's pages: %v", err)
	}
	var pages []*target.Info
	for _, i := range infos {
		if i.Type == "page" {
			pages = append(pages, i)
		}
	}
	return pages
}

// newTabText waits for a page beyond the first before ones (a tab the
// console opened) to show css, and returns that element's text.
func (b *tab) newTabText(before int, css string) string {
	b.t.Helper()
	var id target.ID
	deadline := time.Now().Add(stepTimeout)
	for id == "" {
		if pages := b.targets(); len(pages) > before {
			for _, p := range pages {
				if strings.Contains(p.URL, "/s/") {
					id = p.TargetID
				}
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no new tab reached an app within %s", stepTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(id))
	defer cancel()
	ctx, cancelT := context.WithTimeout(tctx, stepTimeout)
	defer cancelT()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(css))); err != nil {
		b.t.Fatalf("the new tab: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("the new tab: %v", err)
	}
	return text
}

// typeInTerminal types a line into the xterm.js terminal in css and presses
// Enter. The text goes in as a keyboard's input method commits it (CDP's
// synthetic key and char events would reach xterm.js twice: as the key, and
// as the character the char event inserts despite the key being handled);
// Enter is a key.
func typeInTerminal(css, line string) chromedp.Action[chromedp.Void] {
	sel := css + " .xterm-helper-textarea"
	return chromedp.Steps(chromedp.Focus(chromedp.CSS(sel)),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: line}); err != nil {
				return err
			}
			for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
				if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, input.DispatchKeyEventParams{Type: typ, Key: "Enter", Code: "Enter",
					WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}); err != nil {
					return err
				}
			}
			return nil
		}))
}
