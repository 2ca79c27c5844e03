package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// Terminals, port-forwards, followed logs and streamed exec through the
// real manager to a fake agent (streams_fake_test.go).

// streamStall is the manager's stall bound in these tests.
const streamStall = 700 * time.Millisecond

type streamEnv struct {
	*sessionEnv
	fa       *streamAgent
	log      *logCapture
	ann, bob string // login tokens of two users
	ada      string // an admin of their domain
	mona     string // a monitor
	sess     api.Session
	live     []api.ContainerReport // what each heartbeat reports running
}

func newStreamEnv(t *testing.T, tweak ...func(*server.Config)) *streamEnv {
	t.Helper()
	fa := newStreamAgent(t)
	logs := &logCapture{}
	tweak = append(tweak, withLog(logs), func(cfg *server.Config) { cfg.HTTPLimits.StreamStall = streamStall })
	e := &streamEnv{fa: fa, log: logs, sessionEnv: newSessionEnv(t, fa.addr(), `{"cpu":8,"mem":17179869184}`, `{"cpu":2,"mem":4294967296}`, tweak...)}
	e.ann = e.user("ann@example.com", api.RoleUser)
	e.bob = e.user("bob@example.com", api.RoleUser)
	e.ada = e.user("ada@example.com", api.RoleAdmin)
	e.mona = e.user("mona@example.com", api.RoleMonitor)
	e.sess = e.running(e.ann, []map[string]any{{"name": "web", "port": 8080, "protocol": "http"}, {"name": "db", "port": 5432, "protocol": "tcp"}})
	return e
}

func (e *streamEnv) user(email, role string) string {
	createUser(e.t, e.s, e.admin, email, strings.Split(email, "@")[0], role)
	return testcluster.Login(e.t, e.s, email, testPassword)
}

// running starts a RUNNING session of token's owner declaring ports.
func (e *streamEnv) running(token string, ports []map[string]any) api.Session {
	e.t.Helper()
	s := e.mustCreate(token, oneCPU(map[string]any{"ports": ports}))
	e.place(s.ID, 1)
	e.live = append(e.live, running(s.ID, 0, 0))
	e.beat(e.live...)
	return e.waitStatus(s.ID, api.SessionRunning)
}

func (e *streamEnv) wsURL(path string) string { return "ws" + strings.TrimPrefix(e.url(path), "http") }

// dial opens a WebSocket to the manager as token's owner (or with header).
func (e *streamEnv) dial(token, path string, header http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if header == nil {
		header = http.Header{}
	}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	return websocket.Dial(ctx, e.wsURL(path), &websocket.DialOptions{HTTPHeader: header})
}

// refused asserts that a WebSocket was answered with status and a problem
// whose detail says want.
func refused(t *testing.T, resp *http.Response, err error, status int, want string) {
	t.Helper()
	if err == nil || resp == nil {
		t.Fatalf("the WebSocket was opened (%v); want %d", err, status)
	}
	body, _ := io.ReadAll(resp.Body)
	var p api.Problem
	_ = json.Unmarshal(body, &p)
	if resp.StatusCode != status || !strings.Contains(p.Detail, want) {
		t.Fatalf("answer %d %s; want %d saying %q", resp.StatusCode, body, status, want)
	}
}

// output reads a terminal until its output holds want.
func output(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got strings.Builder
	for !strings.Contains(got.String(), want) {
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("reading for %q (have %q): %v", want, got.String(), err)
		}
		if typ == websocket.MessageBinary {
			got.Write(b)
		}
	}
}

// The terminal passes input and output on, clamps resizes and drops absurd
// ones, relays the exit and closes normally with the process's reason.
func TestATerminalRelaysInputOutputResizesAndTheExit(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	c, _, err := e.dial(e.ann, "/v1/sessions/"+e.sess.ID+"/terminal?command=top&command=-d&command=1&cols=5000&rows=40", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	output(t, c, "ready top -d 1 1000x40") // the first size, clamped
	ctx := context.Background()
	for _, m := range []string{`{"type":"resize","cols":0,"rows":10}`, `{"type":"resize","cols":99999,"rows":-1}`, `{"type":"nonsense"}`, `{`,
		`{"type":"resize","cols":99999,"rows":99999}`, `{"type":"resize","cols":132,"rows":43}`} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	output(t, c, "size 1000 1000\r\n")
	output(t, c, "size 132 43\r\n")
	if err := c.Write(ctx, websocket.MessageBinary, []byte("exit 3")); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		typ, b, err := c.Read(rctx)
		if err != nil {
			t.Fatalf("no exit message before the close: %v", err)
		}
		if typ == websocket.MessageText {
			if string(b) != `{"type":"exit","code":3}` {
				t.Fatalf("exit message %s", b)
			}
			break
		}
	}
	_, _, err = c.Read(rctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure || ce.Reason != "the process exited with code 3" {
		t.Fatalf("close %v; want normal with the process's reason", err)
	}
	// Only one resize in the four reached the agent unclamped; the
	// absurd ones never did (no "size 0" or negative line was echoed).
}

// Every refusal of a terminal is an HTTP answer before any upgrade.
func TestTerminalBadInput(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	pending := e.mustCreate(e.ann, oneCPU(nil))
	path := "/v1/sessions/" + e.sess.ID + "/terminal"
	for _, c := range []struct {
		name, token, path string
		status            int
		want              string
	}{
		{"a session that is not RUNNING", e.ann, "/v1/sessions/" + pending.ID + "/terminal", http.StatusConflict, "a terminal needs a RUNNING session"},
		{"an unknown container", e.ann, path + "?container=5", http.StatusNotFound, "has no container 5"},
		{"a container that is no index", e.ann, path + "?container=first", http.StatusBadRequest, "must be a container's index"},
		{"an empty command word", e.ann, path + "?command=ls&command=", http.StatusBadRequest, "command words must not be empty"},
		{"another user's session", e.bob, path, http.StatusNotFound, "no session " + e.sess.ID},
		{"a monitor", e.mona, path, http.StatusForbidden, "only the owner or an admin may use session"},
		{"no credentials", "", path, http.StatusUnauthorized, "needs credentials"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, resp, err := e.dial(c.token, c.path, nil)
			refused(t, resp, err, c.status, c.want)
		})
	}
	t.Run("not a WebSocket", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, e.url(path), e.ann, nil)
		wantDetail(t, wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation), "a terminal is a WebSocket")
	})
	if n := e.fa.terminals.Load(); n != 0 {
		t.Errorf("refused terminals reached the agent %d times", n)
	}
}

// The attack: a page of another origin (a session's app, any site) opens
// a WebSocket to the API; the browser attaches the console's cookie. The
// same request from the console's own origin is accepted, so the refusal
// is the origin's doing.
func TestAConsoleCookieOpensATerminalFromTheConsolesOriginOnly(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	r := testcluster.Do(t, http.MethodPost, e.url("/v1/auth/login"), "", map[string]string{"email": "ann@example.com", "password": testPassword})
	wantStatus(t, r, http.StatusOK)
	var cookie string
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "berth_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatal("login set no session cookie")
	}
	path := "/v1/sessions/" + e.sess.ID + "/terminal"
	host := strings.TrimPrefix(testcluster.URL(e.s), "http://")
	withCookie := func(origin string) http.Header {
		h := http.Header{"Cookie": {cookie}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}
	for _, c := range []struct{ name, origin, want string }{
		{"another site", "https://evil.example", "may not use this console's session cookie"},
		{"the apps origin: the same host name at another port", "http://127.0.0.1:1", "may not use this console's session cookie"},
		{"no Origin at all", "", "must come from the console's page"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, resp, err := e.dial("", path, withCookie(c.origin))
			refused(t, resp, err, http.StatusForbidden, c.want)
		})
	}
	if n := e.fa.terminals.Load(); n != 0 {
		t.Fatalf("a refused terminal reached the agent")
	}
	c, _, err := e.dial("", path, withCookie("http://"+host))
	if err != nil {
		t.Fatalf("the console's own origin with its cookie: %v", err)
	}
	output(t, c, "ready")
	c.Close(websocket.StatusNormalClosure, "")

	// A cookie another page planted beside the console's (cookie tossing
	// from an app on the same host name) makes every cookie request fail.
	r2 := testcluster.Do(t, http.MethodGet, e.url("/v1/auth/whoami"), "", nil)
	wantStatus(t, r2, http.StatusUnauthorized)
	req, _ := http.NewRequest(http.MethodGet, e.url("/v1/auth/whoami"), nil)
	req.Header.Set("Cookie", "berth_session=planted-by-an-app; "+cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "more than one berth_session cookie") {
		t.Fatalf("two session cookies: %d %s", resp.StatusCode, body)
	}
}

// An admin's terminal into a user's session is allowed and audited; the
// owner's is not audited.
func TestANonOwnersTerminalIsAudited(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	const msg = "session accessed by someone other than its owner"
	path := "/v1/sessions/" + e.sess.ID + "/terminal?command=id"
	c, _, err := e.dial(e.ann, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	output(t, c, "ready")
	c.Close(websocket.StatusNormalClosure, "")
	if got := e.log.records(t, msg); len(got) != 0 {
		t.Fatalf("the owner's terminal was audited: %v", got)
	}
	c, _, err = e.dial(e.ada, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	output(t, c, "ready id")
	c.Close(websocket.StatusNormalClosure, "")
	got := e.log.records(t, msg)
	if len(got) != 1 {
		t.Fatalf("audit lines %v; want one", got)
	}
	for k, v := range map[string]string{"audit": "session-access", "action": "terminal", "actor": "ada@example.com", "actor_role": "admin",
		"owner": "ann@example.com", "session": e.sess.ID, "container": e.sess.ID + "-0", "agent": e.agent.ID, "command": "[id]"} {
		if fmt.Sprint(got[0][k]) != v {
			t.Errorf("audit %s = %v, want %s (%v)", k, got[0][k], v, got[0])
		}
	}
}

// A client that opens a flood of output and never reads: the agent is
// held back once the socket buffers are full, the manager holds nothing
// more, and after the stall bound both connections are closed.
func TestAClientThatNeverReadsIsCutOffAndTheManagerStaysFlat(t *testing.T) {
	e := newStreamEnv(t)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	conn, err := net.Dial("tcp", strings.TrimPrefix(testcluster.URL(e.s), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /v1/sessions/%s/terminal?command=flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer %s\r\n\r\n", e.sess.ID, e.ann)
	head, err := http.ReadResponse(bufio.NewReaderSize(conn, 16), nil)
	if err != nil || head.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", head, err)
	}
	// From here on the client reads nothing.
	deadline := time.Now().Add(30 * time.Second)
	for e.fa.ended.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled terminal is still open after 30 s; the agent got %d bytes taken", e.fa.flooded.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	taken := e.fa.flooded.Load()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("the manager took %d KiB of output for a client that read nothing; heap in use grew by %d KiB", taken>>10, grew>>10)
	if taken > 32<<20 {
		t.Errorf("the manager took %d MiB for a client that read nothing: it buffers instead of holding the agent back", taken>>20)
	}
	if grew > 16<<20 {
		t.Errorf("the manager's heap grew by %d MiB", grew>>20)
	}
}

// A port-forward reaches a declared port through the agent; an undeclared
// one is 404 and one nobody listens on 502 with the reason.
func TestPortForwardReachesADeclaredPort(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	e.fa.port(5432, ln.Addr().String())
	for _, ref := range []string{"db", "5432"} {
		c, _, err := e.dial(e.ann, "/v1/sessions/"+e.sess.ID+"/ports/"+ref+"/forward", nil)
		if err != nil {
			t.Fatalf("forward %s: %v", ref, err)
		}
		nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
		fmt.Fprint(nc, "ping\n")
		line, err := bufio.NewReader(nc).ReadString('\n')
		if err != nil || line != "ping\n" {
			t.Fatalf("through the forward of %s: %q, %v", ref, line, err)
		}
		nc.Close()
	}
	_, resp, err := e.dial(e.ann, "/v1/sessions/"+e.sess.ID+"/ports/ssh/forward", nil)
	refused(t, resp, err, http.StatusNotFound, `declares no port "ssh"; it declares web (8080/http), db (5432/tcp)`)
	_, resp, err = e.dial(e.bob, "/v1/sessions/"+e.sess.ID+"/ports/db/forward", nil)
	refused(t, resp, err, http.StatusNotFound, "no session")
	e.fa.port(8080, "127.0.0.1:1")
	_, resp, err = e.dial(e.ann, "/v1/sessions/"+e.sess.ID+"/ports/web/forward", nil)
	refused(t, resp, err, http.StatusBadGateway, "nothing answers on port 8080: connection refused")
}

// Followed logs stream as the agent writes; the parameters are checked
// and passed on; a streamed exec arrives line by line.
func TestFollowedLogsAndStreamedExec(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	logs := e.url("/v1/sessions/" + e.sess.ID + "/logs")
	r := testcluster.Do(t, http.MethodGet, logs+"?follow=true&since=2025-01-02T03:04:05Z&tail=10&container=0", e.ann, nil)
	wantStatus(t, r, http.StatusOK)
	if want := "query follow=true&since=2025-01-02T03%3A04%3A05Z&tail=10\nline 1\nline 2\nline 3\n"; string(r.Body) != want {
		t.Fatalf("followed log %q, want %q", r.Body, want)
	}
	r = testcluster.Do(t, http.MethodGet, logs+"?follow=yes&since=yesterday&tail=-1", e.ann, nil)
	p := wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
	if len(p.Errors) != 3 {
		t.Errorf("three problems, all at once: %+v", p.Errors)
	}
	r = testcluster.Do(t, http.MethodGet, logs+"?container=3", e.ann, nil)
	wantProblem(t, r, http.StatusNotFound, api.ProblemNotFound)

	r = testcluster.Do(t, http.MethodPost, e.url("/v1/sessions/"+e.sess.ID+"/exec"), e.ann, map[string]any{"command": []string{"make"}, "stream": true})
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != api.ExecStreamContentType {
		t.Errorf("Content-Type %q", ct)
	}
	var events []api.ExecEvent
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	for dec.More() {
		var ev api.ExecEvent
		if err := dec.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if len(events) != 3 || string(events[0].Data) != "step 1\n" || events[2].ExitCode == nil || *events[2].ExitCode != 4 {
		t.Fatalf("events %+v", events)
	}
}

// A manager that stops closes its terminals with a reason, going away.
func TestAStoppingManagerClosesItsTerminalsSayingSo(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	c, _, err := e.dial(e.ann, "/v1/sessions/"+e.sess.ID+"/terminal", nil)
	if err != nil {
		t.Fatal(err)
	}
	output(t, c, "ready")
	go e.s.API().Close("the manager m1 is shutting down; open it again")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "the manager m1 is shutting down; open it again" {
		t.Fatalf("close %v; want going away with the manager's reason", err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if e.fa.ended.Load() != 1 {
			return errors.New("the agent's side of the terminal is still open")
		}
		return nil
	})
	_, resp, err := e.dial(e.ann, "/v1/sessions/"+e.sess.ID+"/terminal", nil)
	if err == nil {
		t.Fatalf("a terminal opened on a closing manager (%v)", resp)
	}
}

// An open terminal keeps its session from the idle timeout; the same
// session without one is ended.
func TestAnOpenTerminalKeepsTheSessionFromItsIdleTimeout(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t, withIdleEvery(100*time.Millisecond))
	wantStatus(t, testcluster.Do(t, http.MethodPatch, e.url("/v1/resource-policies/default"), e.admin, map[string]any{"idle_timeout": 2}), http.StatusOK)
	watched := e.sess
	idle := e.running(e.ann, nil)
	c, _, err := e.dial(e.ann, "/v1/sessions/"+watched.ID+"/terminal", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	output(t, c, "ready")
	// The agent reports both idle (no CPU) all along.
	start := time.Now()
	testcluster.Eventually(t, 20*time.Second, func() error {
		e.beat(e.live...)
		if s := e.get(e.ann, idle.ID); s.Status == api.SessionRunning {
			return fmt.Errorf("the session without a terminal is still running after %v", time.Since(start).Round(time.Millisecond))
		}
		return nil
	})
	for time.Since(start) < 4*time.Second {
		e.beat(e.live...)
		time.Sleep(100 * time.Millisecond)
	}
	if s := e.get(e.ann, watched.ID); s.Status != api.SessionRunning {
		t.Fatalf("the session with an open terminal is %s (%+v)", s.Status, s.StatusHistory)
	}
}
