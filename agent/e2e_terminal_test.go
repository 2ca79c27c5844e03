package agent_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// Inside sessions, end to end: terminals, followed logs, port-forwards and
// apps through a real manager and a real agent to real containers.

// terminal is a terminal as a client sees it: what it showed, its exit
// message, how it closed.
type terminal struct {
	t    *testing.T
	conn *websocket.Conn
	mu   sync.Mutex
	out  strings.Builder
	exit *int
	done chan error // the read error that ended it
}

func openTerminal(t *testing.T, cl *client.Client, id string, o client.TerminalOptions) *terminal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), slowMachine)
	defer cancel()
	conn, err := cl.Terminal(ctx, id, o)
	if err != nil {
		t.Fatalf("open a terminal in %s: %v", id, err)
	}
	term := &terminal{t: t, conn: conn, done: make(chan error, 1)}
	t.Cleanup(func() { conn.CloseNow() })
	go func() {
		for {
			typ, b, err := conn.Read(context.Background())
			if err != nil {
				term.done <- err
				return
			}
			if typ == websocket.MessageBinary && strings.Contains(string(b), "\x1b[6n") {
				// Busybox's shell asks where the cursor is and waits for
				// the answer, as any terminal (xterm.js, the user's) gives.
				_ = conn.Write(context.Background(), websocket.MessageBinary, []byte("\x1b[1;1R"))
			}
			term.mu.Lock()
			if typ == websocket.MessageBinary {
				term.out.Write(b)
			} else {
				var m api.TerminalMessage
				if json.Unmarshal(b, &m) == nil && m.Type == api.TerminalExit {
					term.exit = m.Code
				}
			}
			term.mu.Unlock()
		}
	}()
	return term
}

func (term *terminal) send(typ websocket.MessageType, s string) {
	term.t.Helper()
	if err := term.conn.Write(context.Background(), typ, []byte(s)); err != nil {
		term.t.Fatalf("write to the terminal: %v", err)
	}
}

func (term *terminal) shown() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// expect waits until the terminal has shown each of want since mark, and
// returns the new mark.
func (term *terminal) expect(mark int, want ...string) int {
	term.t.Helper()
	deadline := time.Now().Add(slowMachine)
	for {
		s := term.shown()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s[min(mark, len(s)):], w)
		}
		if ok {
			return len(s)
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("the terminal never showed %q; after the mark it shows %q", want, s[min(mark, len(s)):])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ended waits for the terminal's end and returns how it closed.
func (term *terminal) ended() (*int, error) {
	term.t.Helper()
	select {
	case err := <-term.done:
		term.mu.Lock()
		defer term.mu.Unlock()
		return term.exit, err
	case <-time.After(slowMachine):
		term.t.Fatal("the terminal did not end")
		return nil, nil
	}
}

// processes counts the container's processes.
func (sc *sessionCluster) processes(container string) int {
	sc.t.Helper()
	pids, err := sc.rt.Pids(context.Background(), container)
	if err != nil {
		sc.t.Fatalf("pids of %s: %v", container, err)
	}
	return len(pids)
}

func (sc *sessionCluster) waitProcesses(container string, want func(int) bool, what string) {
	sc.t.Helper()
	testcluster.Eventually(sc.t, slowMachine, func() error {
		if n := sc.processes(container); !want(n) {
			return fmt.Errorf("%s: the container runs %d processes", what, n)
		}
		return nil
	})
}

func TestTerminalsAndFollowedLogsInRealContainers(t *testing.T) {
	t.Parallel()
	sc := startSessionCluster(t, 0)
	cl, err := client.New(client.Config{Addrs: []string{testcluster.URL(sc.s)}, Token: sc.user})
	if err != nil {
		t.Fatal(err)
	}
	s := sc.start(api.SessionInteractive, 0.5)
	sc.wait(s.ID, api.SessionRunning)
	cid := s.ID + "-0"
	idle := sc.processes(cid)

	t.Run("a terminal: what is typed and shown, its size and resize, its user and confinement, its exit code", func(t *testing.T) {
		term := openTerminal(t, cl, s.ID, client.TerminalOptions{Cols: 80, Rows: 24})
		term.send(websocket.MessageBinary, "echo hi; stty size\n")
		mark := term.expect(0, "hi\r\n", "24 80\r\n")
		term.send(websocket.MessageText, `{"type":"resize","cols":100,"rows":30}`)
		term.send(websocket.MessageBinary, "stty size\n")
		mark = term.expect(mark, "30 100\r\n")
		// Absurd sizes: a zero is ignored, a huge one clamped.
		term.send(websocket.MessageText, `{"type":"resize","cols":0,"rows":50}`)
		term.send(websocket.MessageText, `{"type":"resize","cols":100000,"rows":40}`)
		term.send(websocket.MessageBinary, "stty size\n")
		mark = term.expect(mark, fmt.Sprintf("40 %d\r\n", api.TerminalMaxCols))
		// As the session's user, with the session's confinement.
		term.send(websocket.MessageBinary, "id -u; grep -E '^(CapEff|Seccomp):' /proc/self/status\n")
		term.expect(mark, "1000\r\n", "CapEff:\t0000000000000000", "Seccomp:\t2")
		term.send(websocket.MessageBinary, "exit 3\n")
		exit, err := term.ended()
		var ce websocket.CloseError
		if exit == nil || *exit != 3 || !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure {
			t.Fatalf("after exit 3: exit message %v, close %v", exit, err)
		}
	})

	t.Run("closing a terminal ends its process and all it started", func(t *testing.T) {
		term := openTerminal(t, cl, s.ID, client.TerminalOptions{})
		term.send(websocket.MessageBinary, "(trap '' HUP; exec sleep 1001) & sleep 1002 & echo started\n")
		term.expect(0, "started")
		sc.waitProcesses(cid, func(n int) bool { return n >= idle+3 }, "the shell and its sleeps")
		term.conn.Close(websocket.StatusNormalClosure, "")
		sc.waitProcesses(cid, func(n int) bool { return n == idle }, "after the close, what the container ran before")
	})

	t.Run("a batch session's log is followed to its end, line by line", func(t *testing.T) {
		b := sc.start(api.SessionBatch, 0.5, "sh", "-c", "i=1; while [ $i -le 4 ]; do echo line $i; i=$((i+1)); sleep 1; done")
		sc.wait(b.ID, api.SessionRunning)
		rc, err := cl.Logs(context.Background(), b.ID, client.LogOptions{Follow: true, Tail: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var lines []string
		var at []time.Time
		scan := bufio.NewScanner(rc)
		for scan.Scan() {
			lines = append(lines, scan.Text())
			at = append(at, time.Now())
		}
		if err := scan.Err(); err != nil {
			t.Fatalf("the followed log was cut: %v", err)
		}
		if strings.Join(lines, ",") != "line 1,line 2,line 3,line 4" {
			t.Fatalf("followed %q", lines)
		}
		if at[3].Sub(at[0]) < 2*time.Second {
			t.Errorf("the lines arrived within %v: not as they were written, a second apart", at[3].Sub(at[0]))
		}
		tail, err := cl.Logs(context.Background(), b.ID, client.LogOptions{Tail: 2})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(tail)
		tail.Close()
		if string(got) != "line 3\nline 4\n" {
			t.Errorf("the last two lines: %q", got)
		}
	})

	t.Run("an agent that stops closes its terminals saying so and leaves no process", func(t *testing.T) {
		term := openTerminal(t, cl, s.ID, client.TerminalOptions{})
		term.send(websocket.MessageBinary, "sleep 1004 & echo started\n")
		term.expect(0, "started")
		sc.waitProcesses(cid, func(n int) bool { return n >= idle+2 }, "the shell and its sleep")
		sc.stopAgent()
		_, err := term.ended()
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || !strings.Contains(ce.Reason, "is shutting down") {
			t.Fatalf("the terminal of a stopping agent ended with %v; want going away, saying why", err)
		}
		sc.waitProcesses(cid, func(n int) bool { return n == idle }, "after the agent stopped")
	})
}

func TestPortForwardAndAnAppInRealContainers(t *testing.T) {
	t.Parallel()
	nc := startNetCluster(t, nil)
	cl, err := client.New(client.Config{Addrs: []string{testcluster.URL(nc.s)}, Token: nc.user})
	if err != nil {
		t.Fatal(err)
	}
	// busybox httpd serves the app under its prefix, which the container
	// finds in its environment; a CGI script shows what reached it; nc
	// answers each connection to 9000.
	script := `set -e; www=/tmp/www$BERTH_APP_PREFIX_WEB; mkdir -p $www
echo '<!doctype html><title>app</title><p id=page>hello from busybox httpd</p>' > ${www}index.html
printf 'echo "Content-Type: text/plain"; echo; echo "cookie=[$HTTP_COOKIE] prefix=[$HTTP_X_FORWARDED_PREFIX]"\n' > ${www}env.sh
chmod +x ${www}env.sh; printf '*.sh:/bin/sh\n' > /tmp/httpd.conf
httpd -p 8080 -h /tmp/www -c /tmp/httpd.conf
(while :; do echo hello-from-nc | nc -l -p 9000; done) &
trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done`
	s := nc.startSession(1, script, map[string]any{"ports": []map[string]any{
		{"name": "web", "port": 8080, "protocol": "http"}, {"name": "db", "port": 9000, "protocol": "tcp"}}})
	ctx, cancel := context.WithTimeout(context.Background(), slowMachine)
	defer cancel()

	t.Run("port-forward reaches nc in the session", func(t *testing.T) {
		var line string
		testcluster.Eventually(t, slowMachine, func() error {
			conn, err := cl.PortForward(ctx, s.ID, "db", 0)
			if err != nil {
				return err
			}
			defer conn.Close()
			line, err = bufio.NewReader(conn).ReadString('\n')
			return err
		})
		if line != "hello-from-nc\n" {
			t.Fatalf("through the forward: %q", line)
		}
		_, err := cl.PortForward(ctx, s.ID, "ssh", 0)
		var p *api.Problem
		if !errors.As(err, &p) || p.Status != http.StatusNotFound {
			t.Fatalf("an undeclared port: %v", err)
		}
	})

	// The apps origin at SESSION.localhost:PORT; Go's requests dial it on
	// the loopback address with that host name.
	appsPort := strings.TrimPrefix(nc.s.AppsAddr(), "127.0.0.1:")
	host := s.ID + ".localhost:" + appsPort
	prefix := "/s/" + s.ID + "/web/"
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, nc.s.AppsAddr())
		}}}
	get := func(path, cookie string) (int, string, *http.Response) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+host+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp
	}
	var tok *api.AppToken
	t.Run("the apps origin refuses whoever lacks the app's cookie", func(t *testing.T) {
		if status, body, _ := get(prefix, ""); status != http.StatusUnauthorized {
			t.Fatalf("no cookie: %d %s", status, body)
		}
		// Another user (an admin who reaches the session) gets no token.
		admin, err := client.New(client.Config{Addrs: []string{testcluster.URL(nc.s)}, Token: nc.admin})
		if err != nil {
			t.Fatal(err)
		}
		_, err = admin.AppToken(ctx, s.ID, "web")
		var p *api.Problem
		if !errors.As(err, &p) || p.Status != http.StatusForbidden {
			t.Fatalf("an admin's token for the user's app: %v", err)
		}
		if tok, err = cl.AppToken(ctx, s.ID, "web"); err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(tok.URL)
		if u.Host != host {
			t.Fatalf("the token's URL %s: want the session's own host %s", tok.URL, host)
		}
		status, _, resp := get(u.RequestURI(), "")
		if status != http.StatusSeeOther {
			t.Fatalf("the token: %d", status)
		}
		var cookie string
		for _, c := range resp.Cookies() {
			cookie = c.Name + "=" + c.Value
		}
		status, body, _ := get(prefix, cookie)
		if status != http.StatusOK || !strings.Contains(body, "hello from busybox httpd") {
			t.Fatalf("the app with its cookie: %d %s", status, body)
		}
		if status, _, _ := get(u.RequestURI(), ""); status != http.StatusUnauthorized {
			t.Fatalf("the token a second time: %d", status)
		}
	})

	t.Run("chromium opens the app through the apps origin and the console's cookie never reaches it", func(t *testing.T) {
		exe := testenv.Chromium(t)
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
			chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-gpu", true))
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		defer cancelAlloc()
		bctx, cancelBrowser := chromedp.NewContext(actx)
		defer cancelBrowser()
		if err := chromedp.Do(bctx); err != nil { // starts the browser, without a deadline
			t.Fatalf("start chromium: %v", err)
		}
		sctx, cancelSteps := context.WithTimeout(bctx, slowMachine)
		defer cancelSteps()
		console := testcluster.URL(nc.s)
		err := chromedp.Do(sctx,
			// A user logged in to the console: its cookie is in the browser.
			chromedp.Navigate(console+"/"), chromedp.WaitVisible(chromedp.CSS("#login-email")),
			chromedp.SendKeys(chromedp.CSS("#login-email"), "dev@example.com"), chromedp.SendKeys(chromedp.CSS("#login-password"), "Passw0rd!"),
			chromedp.Click(chromedp.CSS("#login-submit")), chromedp.WaitVisible(chromedp.CSS("#whoami")))
		if err != nil {
			t.Fatalf("log in to the console: %v; the page then: %s", err, pageText(bctx))
		}
		// The link the console's OPEN button opens, asked for as the
		// button does, just before: a token lives a minute, and starting
		// chromium on a loaded machine can take longer than that.
		tok, err := cl.AppToken(ctx, s.ID, "web")
		if err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(sctx, chromedp.Navigate(tok.URL), chromedp.WaitVisible(chromedp.CSS("#page"))); err != nil {
			t.Fatalf("open the app in the browser: %v; the page then: %s", err, pageText(bctx))
		}
		page, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS("#page")))
		if err != nil || page != "hello from busybox httpd" {
			t.Fatalf("the app's page: %q, %v", page, err)
		}
		if err := chromedp.Do(sctx, chromedp.Navigate("http://"+host+prefix+"env.sh"), chromedp.WaitVisible(chromedp.CSS("body"))); err != nil {
			t.Fatal(err)
		}
		seen, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatal(err)
		}
		if want := "cookie=[] prefix=[/s/" + s.ID + "/web]"; strings.TrimSpace(seen) != want {
			t.Fatalf("the app received %q; want %q: no Berth cookie, the prefix", seen, want)
		}
	})
}

// pageText is where the browser is and what its page says, for a failure's
// message (a step that timed out says only that).
func pageText(bctx context.Context) string {
	ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText : "(no body)") + "\nloaded: " + performance.getEntriesByType("resource").map(e => e.name.replace(location.origin, "") + " " + e.responseStatus + " " + Math.round(e.duration) + "ms").join(", ")`))
	if err != nil {
		return fmt.Sprintf("(could not read it: %v)", err)
	}
	return text
}
