package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/v1/empty"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/registrytest"
)

const (
	annEmail    = "ann@example.com"
	annPassword = "Ann-pass-1"
)

// TestConsoleAUsersDay is what a user of the cluster does all day, in a
// real browser against a real manager and an agent that runs the
// commands: a folder with files uploaded, downloaded and deleted; a batch
// session started with a quoted command, environment and a mount that
// fails and shows why; an interactive one whose detail shows its history,
// containers, GPU slice, log and runs a command; and the superadmin
// draining the agent.
func TestConsoleAUsersDay(t *testing.T) {
	// Not parallel: one chromium at a time, beside whatever else the
	// suite runs, keeps each page step well within its deadline on two
	// cores.
	chromiumPath(t)
	c := testcluster.StartFake(t, func(cfg *server.Config) {
		cfg.AgentToken = agentToken
		cfg.FolderHosts = map[string]string{"local": t.TempDir()}
		cfg.AppsAddr = "127.0.0.1:0"
	})
	s := c.Servers[0]
	agent := startFakeAgent(t, s)
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	adminDo(t, s, admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{"allowed_vfolder_hosts": []string{"local"},
		"max_containers_per_session": 2}, http.StatusOK)
	adminDo(t, s, admin, http.MethodPost, "/v1/users", map[string]any{"email": annEmail, "username": "ann",
		"password": annPassword}, http.StatusCreated)
	ann := testcluster.Login(t, s, annEmail, annPassword)

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	b := startBrowser(t, testcluster.URL(s))
	b.do("open the console", chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-email")))
	b.login(annEmail, annPassword)

	var folder api.Folder
	step("a folder: new directory, upload with progress, download, delete", func(t *testing.T) {
		b.t = t
		b.nav("data")
		b.do("new folder", click("#new-folder"), chromedp.WaitVisible(chromedp.CSS("#folder-dialog")),
			typeIn("#folder-name", "work"), click("#folder-submit"), chromedp.WaitNotPresent(chromedp.CSS("#folder-dialog")),
			waitText("#folders-list", "work"))
		var fs api.List[api.Folder]
		apiGet(t, s, ann, "/v1/folders", &fs)
		if len(fs.Items) != 1 || fs.Items[0].Permission != api.PermWD {
			t.Fatalf("ann's folders: %+v", fs.Items)
		}
		folder = fs.Items[0]
		b.do("browse", click(`a.folder-link[data-folder="work"]`), waitText("#folder-path", "work"), waitText("#files-list", "This directory is empty."))
		b.do("new directory", click("#new-directory"), chromedp.WaitVisible(chromedp.CSS("#mkdir-dialog")),
			typeIn("#directory-name", "runs"), click("#mkdir-submit"), chromedp.WaitNotPresent(chromedp.CSS("#mkdir-dialog")),
			waitText("#files-list", "runs/"))
		b.do("into runs", clickJS(`document.querySelector('#files-list a.dir-link[data-path="runs"]')`), waitText("#folder-path", "runs"),
			pageLoaded(), waitText("#files-list", "This directory is empty."))
		local := filepath.Join(t.TempDir(), "train.csv")
		content := strings.Repeat("epoch,loss\n1,0.5\n", 4096)
		if err := os.WriteFile(local, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		b.do("upload", chromedp.SetUploadFiles(chromedp.CSS("#upload-input"), []string{local}),
			waitJS(`document.querySelector('#uploads .upload[data-file="runs/train.csv"]')?.classList.contains("done")`),
			waitText("#files-list", "train.csv"), waitText("#files-list", "68 KiB"))
		b.shot("50-file-browser")
		var files api.List[api.FileEntry]
		apiGet(t, s, ann, "/v1/folders/"+folder.ID+"/files?path=runs", &files)
		if len(files.Items) != 1 || files.Items[0].Name != "train.csv" || files.Items[0].Size != int64(len(content)) {
			t.Fatalf("the API lists %+v", files.Items)
		}
		b.do("download", click(`a[data-action="download"][data-file="runs/train.csv"]`))
		if got := b.downloaded("train.csv"); got != content {
			t.Fatalf("downloaded %d bytes, want the %d uploaded", len(got), len(content))
		}
		b.do("delete", click(`button[data-action="delete-file"][data-file="runs/train.csv"]`), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
			click("#confirm-ok"), waitText("#files-list", "This directory is empty."))
		apiGet(t, s, ann, "/v1/folders/"+folder.ID+"/files?path=runs", &files)
		if len(files.Items) != 0 {
			t.Fatalf("after delete the API lists %+v", files.Items)
		}
		b.do("up", click(`#folder-path a.crumb[data-path=""]`), pageLoaded(), waitText("#files-list", "runs/"))
	})

	var batch api.Session
	step("START: images offered, a quoted command, environment, a mount; the batch's failure shows its last log lines", func(t *testing.T) {
		b.t = t
		b.nav("sessions")
		b.do("start dialog", click("#start-session"), chromedp.WaitVisible(chromedp.CSS("#start-dialog")),
			waitJS(`[...document.querySelectorAll("#session-image-list option")].map(o => o.value).join() === "berth/base:latest,python:3.12"`),
			waitJS(`document.querySelector("#session-cluster-size").max === "2"`),
			waitText("#session-mounts", "work at /home/work/work, read & write"),
			// The policy does not allow root: the dialog does not offer it.
			waitJS(`!document.querySelector("#session-root")`))
		b.do("an unclosed quote is shown", typeIn("#session-command", "echo 'hi"),
			waitText(fieldError("session-command"), "the single quote at character 6 is never closed"))
		b.do("fill in", typeIn("#session-name", "failing-batch"), choose("#session-type", "batch"),
			typeIn("#session-command", `sh -c 'echo "hello $GREETING"; echo second line; exit 3'`),
			waitText("#session-command-words", "echo \"hello $GREETING\"; echo second line; exit 3"),
			typeIn("#session-env", "GREETING=world"), click(`#session-mounts input[data-folder="work"]`))
		b.shot("51-start-batch")
		b.do("launch", click("#start-submit"), chromedp.WaitNotPresent(chromedp.CSS("#start-dialog")))
		var list api.List[api.Session]
		apiGet(t, s, ann, "/v1/sessions", &list)
		if len(list.Items) != 1 {
			t.Fatalf("sessions %+v", list.Items)
		}
		batch = list.Items[0]
		if !slices.Equal(batch.Command, []string{"sh", "-c", `echo "hello $GREETING"; echo second line; exit 3`}) ||
			!slices.Equal(batch.EnvNames, []string{"GREETING"}) || len(batch.Mounts) != 1 || batch.Mounts[0].ReadOnly || batch.Type != api.SessionBatch {
			t.Fatalf("the API holds %+v", batch)
		}
		b.do("it fails", click("#tab-finished"), waitText("#sessions-list", "failing-batch"), waitText("#sessions-list", "exit code 3"),
			waitText("#sessions-list pre.log-tail", "hello world\nsecond line"))
		b.shot("52-batch-failed")
	})

	step("the failed batch's detail: history, exit code, command words, environment names, mount, log", func(t *testing.T) {
		b.t = t
		b.do("open it", clickUntil(`a.session-link[data-session="`+batch.ID+`"]`, `location.hash.includes(`+js(batch.ID)+`)`), pageLoaded(),
			waitText("#session-exit-code", "3"), waitText("#session-command", "echo second line"),
			waitText("#session-env", "GREETING"), waitText("#session-mounts-list", "/home/work/work"),
			waitText("#status-history", "RUNNING"), waitText("#status-history", "TERMINATED"),
			waitText("#session-logs", "hello world"), waitText("#containers-list", "exited"))
		if strings.Contains(b.eval(`document.querySelector("#page").textContent`), "world\"") {
			t.Error("the detail shows an environment value")
		}
		b.shot("53-session-detail-batch")
	})

	var inter api.Session
	step("an interactive session with half a GPU: its detail runs a command and shows the GPU slice", func(t *testing.T) {
		b.t = t
		adminDo(t, s, admin, http.MethodPatch, "/v1/resource-policies/default", map[string]any{"allow_root": true}, http.StatusOK)
		b.nav("sessions")
		b.do("start", click("#start-session"), chromedp.WaitVisible(chromedp.CSS("#start-dialog")), typeIn("#session-name", "notebook"),
			// Now the policy allows root, and ann asks for it.
			click("#session-root"),
			chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#slider-cuda-shares"); s.value = "0.5"; s.dispatchEvent(new Event("input")); })()`),
			waitText("#slider-cuda-shares-value", "0.5 fGPU"), click("#start-submit"), chromedp.WaitNotPresent(chromedp.CSS("#start-dialog")),
			// Newest first.
			waitText("#sessions-list tbody tr:first-child", "notebook"), waitText("#sessions-list", "RUNNING"))
		var list api.List[api.Session]
		apiGet(t, s, ann, "/v1/sessions", &list)
		inter = list.Items[0]
		if inter.Name != "notebook" || !inter.RunAsRoot {
			t.Fatalf("newest session %s (run_as_root %v), want notebook as root", inter.Name, inter.RunAsRoot)
		}
		b.do("detail", clickUntil(`a.session-link[data-session="`+inter.ID+`"]`, `location.hash.includes(`+js(inter.ID)+`)`), pageLoaded(),
			waitText("#session-name", "notebook"), waitText("#containers-list", "GPU-fake"), waitText("#containers-list", "× 0.5"),
			waitJS(`!document.querySelector("#exec-command").disabled`))
		b.do("exec", typeIn("#exec-command", `sh -c 'echo from inside; echo oops >&2; exit 4'`), click("#exec-run"),
			waitText("#exec-stdout", "from inside"), waitText("#exec-stderr", "oops"), waitText("#exec-exit-code", "4"))
		b.shot("54-session-detail-exec")
		b.do("history and log", waitText("#status-history", "PENDING"), waitText("#status-history", "RUNNING"), waitText("#session-logs-note", "following"))
	})

	step("a terminal in the session: xterm.js under the console's strict CSP, typing, the exit code", func(t *testing.T) {
		b.t = t
		// CSP violations of this page from now on (evaluated through the
		// browser's debugging protocol: the page itself runs no inline code).
		b.eval(`(() => { window.cspViolations = []; document.addEventListener("securitypolicyviolation", e => window.cspViolations.push(e.violatedDirective + " " + e.blockedURI)); return ""; })()`)
		b.do("open", click("#open-terminal"), chromedp.WaitVisible(chromedp.CSS("#session-terminal .xterm-rows")),
			waitText("#terminal-note", "connected"), chromedp.WaitVisible(chromedp.CSS("#session-terminal .xterm-helper-textarea")),
			typeInTerminal("#session-terminal", "echo hi-$((1+1)); stty size"),
			waitText("#session-terminal .xterm-rows", "hi-2"))
		b.shot("54b-session-terminal")
		// xterm.js's own <style> elements apply (they carry the page's
		// nonce): the rows take its white on black; a <style> made any
		// other way (no nonce) is refused, as injected markup's would be.
		if got := b.eval(`getComputedStyle(document.querySelector("#session-terminal .xterm-rows")).color`); got != "rgb(255, 255, 255)" {
			t.Errorf("the terminal's text is %s: xterm.js's theme did not apply", got)
		}
		if got := b.eval(`window.cspViolations.join("; ")`); got != "" {
			t.Errorf("the terminal broke the Content-Security-Policy: %s", got)
		}
		probe := b.eval(`new Promise(done => {
			const st = document.createElementNS("http://www.w3.org/1999/xhtml", "style");
			st.textContent = "#session-terminal-card { outline: 3px solid rgb(1, 2, 3); }";
			document.head.append(st);
			setTimeout(() => done(getComputedStyle(document.querySelector("#session-terminal-card")).outlineColor + " | " + window.cspViolations.join("; ")), 200);
		})`)
		if strings.Contains(probe, "rgb(1, 2, 3) |") || !strings.Contains(probe, "style-src") {
			t.Errorf("a <style> without the nonce: %s; want it refused by the CSP", probe)
		}
		b.do("exit", typeInTerminal("#session-terminal", "exit 3"),
			waitText("#terminal-note", "The process exited with code 3."))
	})

	step("a session with an app and a chatty log: the log follows, OPEN shows the app on the apps origin", func(t *testing.T) {
		b.t = t
		var received []string
		var mu sync.Mutex
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			received = append(received, r.Header.Get("Cookie"))
			mu.Unlock()
			fmt.Fprintf(w, "<!doctype html><title>app</title><p id=app>the notebook app at %s</p>", r.Header.Get("X-Forwarded-Prefix"))
		}))
		defer app.Close()
		agent.port(8888, strings.TrimPrefix(app.URL, "http://"))
		var chatty api.Session
		r := testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/sessions", ann, map[string]any{"image": "berth/base:latest", "type": "interactive",
			"name": "chatty", "resources": map[string]any{"cpu": 1, "mem": 1 << 30},
			"command": []string{"sh", "-c", "i=0; while [ $i -lt 600 ]; do echo tick $i; i=$((i+1)); sleep 0.2; done"},
			"ports":   []map[string]any{{"name": "notebook", "port": 8888, "protocol": "http"}, {"name": "ssh", "port": 22, "protocol": "tcp"}}})
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &chatty)
		b.open("session?id=" + chatty.ID)
		b.do("the log follows", waitText("#session-name", "chatty"), waitText("#containers-list", "running"),
			waitText("#session-logs", "tick 3"), waitText("#session-logs", "tick 8"), waitText("#apps-list", "8888/http"),
			waitText("#apps-list", "port-forward "+chatty.ID+" LOCAL:ssh"))
		before := len(b.targets())
		b.do("OPEN", click("#open-app-notebook"))
		page := b.newTabText(before, "#app")
		if !strings.Contains(page, "the notebook app at /s/"+chatty.ID+"/notebook") {
			t.Fatalf("the app's tab shows %q", page)
		}
		mu.Lock()
		for _, c := range received {
			if strings.Contains(c, "berth_") {
				t.Errorf("the app received Berth's cookies: %q", c)
			}
		}
		mu.Unlock()
		b.shot("54c-session-apps")
		// Out of the way of the agent's figures below.
		adminDo(t, s, ann, http.MethodDelete, "/v1/sessions/"+chatty.ID, nil, http.StatusAccepted)
		b.do("ended", waitText("#status-history", "TERMINATED"), waitText("#session-logs-note", "ended"))
	})

	step("the superadmin sees the agent with what it holds and drains it after confirming", func(t *testing.T) {
		b.t = t
		b.logout()
		b.login(testcluster.AdminEmail, testcluster.AdminPassword)
		b.nav("agents")
		b.do("agent", waitText("#agents-list", "127.0.0.1"),
			waitText(`#agents-list [data-meter="occupied-cuda.shares"]`, "0.5 of 2"),
			waitText(`#agents-list [data-gpu]`, "0.5 of 1"),
			waitText(`#agents-list [data-meter="occupied-cpu"]`, "1 of 8 cores"))
		b.shot("55-agents")
		b.do("drain: cancel first", click(`input[data-agent="`+agent.id+`"]`), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
			click("#confirm-dialog footer button.secondary"), chromedp.WaitNotPresent(chromedp.CSS("#confirm-dialog")),
			waitJS(`document.querySelector('input[data-agent="`+agent.id+`"]').checked`))
		var a api.Agent
		apiGet(t, s, admin, "/v1/agents/"+agent.id, &a)
		if !a.Schedulable {
			t.Fatal("cancelling the confirmation drained the agent")
		}
		b.do("drain", click(`input[data-agent="`+agent.id+`"]`), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
			waitText("#confirm-dialog", "Sessions running there stay"), click("#confirm-ok"),
			waitText("#agents-list", "drained"))
		b.shot("56-agent-drained")
		apiGet(t, s, admin, "/v1/agents/"+agent.id, &a)
		if a.Schedulable {
			t.Fatal("the agent is still schedulable after DRAIN")
		}
		b.do("LOST tab", click("#tab-LOST"), waitText("#agents-list", "No agent is lost."))
	})

	step("the superadmin pulls an image onto the agent from Environments, and removes it", func(t *testing.T) {
		b.t = t
		reg := registrytest.Start(t, registrytest.Options{})
		reg.Push(registrytest.WithData(t, empty.Image, 1<<10, 1, 51), "lab/tools:1")
		ref := reg.Ref("lab/tools:1")
		adminDo(t, s, admin, http.MethodPost, "/v1/registries", map[string]any{"name": "lab", "url": "http://" + reg.Host, "insecure_http": true}, http.StatusCreated)
		b.nav("environments")
		b.do("images", waitText("#images-list", "berth/base:latest"), waitText("#images-list", "python:3.12"))
		b.do("pull", click("#image-pull"), chromedp.WaitVisible(chromedp.CSS("#pull-dialog")),
			typeIn("#pull-image", ref), click(`input[data-pull-agent="`+agent.id+`"]`), click("#pull-submit"),
			chromedp.WaitNotPresent(chromedp.CSS("#pull-dialog")), waitText("#images-list", ref))
		b.shot("56b-environments")
		var imgs api.List[api.ClusterImage]
		apiGet(t, s, admin, "/v1/images", &imgs)
		if !slices.ContainsFunc(imgs.Items, func(im api.ClusterImage) bool { return im.Name == ref && slices.Equal(im.Agents, []string{agent.id}) }) {
			t.Fatalf("images after the pull: %+v", imgs.Items)
		}
		// (The pull's toast may lie over the button: clicked as a script.)
		b.do("an unknown tag is refused with the registry's words", clickJS(`document.querySelector("#image-pull")`), chromedp.WaitVisible(chromedp.CSS("#pull-dialog")),
			typeIn("#pull-image", reg.Ref("lab/tools:404")), click(`input[data-pull-agent="`+agent.id+`"]`), click("#pull-submit"),
			waitText("#pull-dialog", "check the name and the tag"),
			click("#pull-dialog footer button.secondary"), chromedp.WaitNotPresent(chromedp.CSS("#pull-dialog")))
		// The list is drawn again every few seconds: found and clicked in
		// one script.
		b.do("remove", clickJS(`document.querySelector('button[data-action="remove-image"][data-image="`+ref+`"]')`), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
			click("#confirm-ok"), waitJS(`!document.querySelector('#images-list').textContent.includes(`+js(ref)+`)`))
		apiGet(t, s, admin, "/v1/images", &imgs)
		if slices.ContainsFunc(imgs.Items, func(im api.ClusterImage) bool { return im.Name == ref }) {
			t.Fatalf("the image is still listed after REMOVE: %+v", imgs.Items)
		}
	})

	step("the admin opens ann's session from the list and terminates it", func(t *testing.T) {
		b.t = t
		b.nav("sessions")
		b.do("open", clickUntil(`a.session-link[data-session="`+inter.ID+`"]`, `location.hash.includes(`+js(inter.ID)+`)`), pageLoaded(), waitText("#session-name", "notebook"),
			click("#terminate-session"), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")), click("#confirm-ok"),
			waitText("#status-history", "TERMINATED"))
		b.shot("57-session-terminated")
		var got api.Session
		apiGet(t, s, ann, "/v1/sessions/"+inter.ID, &got)
		if got.Status != api.SessionTerminated {
			t.Fatalf("the session is %s", got.Status)
		}
	})

	step("shell words: the START and exec boxes split as a shell does", func(t *testing.T) {
		b.t = t
		got := b.eval(`import("/assets/shellwords.js").then(m => JSON.stringify([
			"sh -c 'echo hi; exit 3'", "echo \"a b\" c\\ d", "x '' y", "a\"b\"'c'", "echo \"say \\\"hi\\\"\"", "  spaced   out  ",
		].map(l => m.splitWords(l))))`)
		want := `[["sh","-c","echo hi; exit 3"],["echo","a b","c d"],["x","","y"],["abc"],["echo","say \"hi\""],["spaced","out"]]`
		if got != want {
			t.Fatalf("splitWords gave %s\nwant %s", got, want)
		}
		for _, bad := range []string{`"open`, `'open`, `trailing\`} {
			if msg := b.eval(fmt.Sprintf(`import("/assets/shellwords.js").then(m => { try { m.splitWords(%s); return ""; } catch (e) { return e.message; } })`, js(bad))); msg == "" {
				t.Errorf("%s was split without complaint", bad)
			}
		}
	})
}
