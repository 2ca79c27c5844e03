package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// Sessions' web apps on the apps origin: tokens from the API, the cookie
// the apps origin sets for one app, and the proxy to the app (a local
// server standing for the container, reached through the fake agent's
// tunnel).

func withApps(domain string) func(*server.Config) {
	return func(cfg *server.Config) {
		cfg.AppsAddr, cfg.AppsDomain, cfg.AppsAnswerTimeout = "127.0.0.1:0", domain, time.Second
	}
}

// appServer stands for a session's web app: it says what it received and
// tries to plant a cookie under Berth's name; /ws echoes.
func appServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/ws") {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			defer c.CloseNow()
			typ, b, err := c.Read(r.Context())
			if err == nil {
				_ = c.Write(r.Context(), typ, append([]byte("echo "), b...))
			}
			c.Close(websocket.StatusNormalClosure, "")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "berth_session", Value: "planted", Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: "app_state", Value: "kept", Path: "/"})
		fmt.Fprintf(w, "path=%s cookie=%q prefix=%s host=%s", r.URL.Path, r.Header.Get("Cookie"), r.Header.Get("X-Forwarded-Prefix"), r.Host)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *streamEnv) appToken(token, session, name string) *testcluster.Response {
	return testcluster.Do(e.t, http.MethodPost, e.url("/v1/sessions/"+session+"/apps/"+name+"/token"), token, nil)
}

// openApp takes a token from the API and opens its URL: the app's cookie.
func (e *streamEnv) openApp(token, session, name string) *http.Cookie {
	e.t.Helper()
	r := e.appToken(token, session, name)
	wantStatus(e.t, r, http.StatusCreated)
	var tok api.AppToken
	r.JSON(e.t, &tok)
	resp, err := noRedirects.Get(tok.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/s/"+session+"/"+name+"/" {
		e.t.Fatalf("opening the token: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == "berth_app" {
			return c
		}
	}
	e.t.Fatal("no app cookie set")
	return nil
}

// appGet asks the apps origin for path with the given Cookie header.
func appGet(t *testing.T, base, path, cookies string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if cookies != "" {
		req.Header.Set("Cookie", cookies)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestAppTokensAreForTheOwnersHTTPPortsOnly(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t, withApps(""))
	id := e.sess.ID
	pending := e.mustCreate(e.ann, oneCPU(map[string]any{"ports": []map[string]any{{"name": "web", "port": 80, "protocol": "http"}}}))
	for _, c := range []struct {
		name, token, session, app string
		status                    int
		typ, want                 string
	}{
		{"an admin of the owner's domain", e.ada, id, "web", http.StatusForbidden, api.ProblemForbidden, "only the owner of session " + id + " may open its apps"},
		{"another user", e.bob, id, "web", http.StatusNotFound, api.ProblemNotFound, "no session " + id},
		{"an undeclared name", e.ann, id, "jupyter", http.StatusNotFound, api.ProblemNotFound, `declares no app "jupyter"`},
		{"a tcp port", e.ann, id, "db", http.StatusConflict, api.ProblemConflict, "is a tcp port: reach it with berth session port-forward"},
		{"a session not yet running", e.ann, pending.ID, "web", http.StatusConflict, api.ProblemConflict, "its apps open once it is RUNNING"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := wantProblem(t, e.appToken(c.token, c.session, c.app), c.status, c.typ)
			wantDetail(t, p, c.want)
		})
	}
	r := e.appToken(e.ann, id, "web")
	wantStatus(t, r, http.StatusCreated)
	var tok api.AppToken
	r.JSON(t, &tok)
	u, err := url.Parse(tok.URL)
	if err != nil || u.Path != "/_berth/open" || u.Query().Get("token") == "" || u.Port() != portOf(e.s.AppsAddr()) || u.Hostname() != "127.0.0.1" {
		t.Fatalf("token URL %q: want the API's host name at the apps port %s", tok.URL, e.s.AppsAddr())
	}
	if d := time.Until(tok.ExpiresAt); d <= 0 || d > 2*time.Minute {
		t.Errorf("token expires in %v", d)
	}

	t.Run("a manager without an apps origin says how to get one", func(t *testing.T) {
		t.Parallel()
		plain := newStreamEnv(t)
		wantDetail(t, wantProblem(t, plain.appToken(plain.ann, plain.sess.ID, "web"), http.StatusConflict, api.ProblemConflict), "start the managers with -apps-addr")
	})
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// The whole way in, and every attack on it: no cookie, the console's
// cookie, another user's app cookie, a used token; what the app receives
// and what it may set.
func TestAnAppOpensWithItsTokenAndOnlyForItsOwner(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t, withApps(""))
	app := appServer(t)
	e.fa.port(8080, strings.TrimPrefix(app.URL, "http://"))
	base := "http://" + e.s.AppsAddr()
	prefix := "/s/" + e.sess.ID + "/web/"

	// The console's login cookie, as a browser would send it to the apps
	// origin when both share a host name.
	r := testcluster.Do(t, http.MethodPost, e.url("/v1/auth/login"), "", map[string]string{"email": "ann@example.com", "password": testPassword})
	var console string
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "berth_session" {
			console = c.Name + "=" + c.Value
		}
	}

	status, body, _ := appGet(t, base, prefix, "")
	if status != http.StatusUnauthorized || !strings.Contains(body, "no app cookie") {
		t.Fatalf("no cookie: %d %s", status, body)
	}
	status, body, _ = appGet(t, base, prefix, console)
	if status != http.StatusUnauthorized {
		t.Fatalf("the console's cookie is accepted on the apps origin: %d %s", status, body)
	}

	cookie := e.openApp(e.ann, e.sess.ID, "web")
	if !cookie.HttpOnly || cookie.Path != prefix || cookie.SameSite != http.SameSiteLaxMode {
		t.Errorf("app cookie %+v: want HttpOnly, SameSite=Lax, for %s alone", cookie, prefix)
	}
	status, body, hdr := appGet(t, base, prefix+"index.html?x=1", console+"; "+cookie.Name+"="+cookie.Value+"; theirs=1")
	if status != http.StatusOK {
		t.Fatalf("the app with its cookie: %d %s", status, body)
	}
	if want := fmt.Sprintf("path=%sindex.html cookie=\"theirs=1\" prefix=/s/%s/web host=%s", prefix, e.sess.ID, e.s.AppsAddr()); body != want {
		t.Errorf("the app received %s\nwant          %s", body, want)
	}
	for _, sc := range hdr.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "berth_") {
			t.Errorf("the app planted %q through the apps origin", sc)
		}
	}
	if len(hdr.Values("Set-Cookie")) != 1 {
		t.Errorf("the app's own cookie did not pass: %v", hdr.Values("Set-Cookie"))
	}

	// Another user's app cookie (bob opens his own session's app) does not
	// open ann's.
	bobs := e.running(e.bob, []map[string]any{{"name": "web", "port": 8080, "protocol": "http"}})
	bobCookie := e.openApp(e.bob, bobs.ID, "web")
	status, body, _ = appGet(t, base, prefix, bobCookie.Name+"="+bobCookie.Value)
	if status != http.StatusForbidden || !strings.Contains(body, "do not open app web of session "+e.sess.ID) {
		t.Fatalf("bob's cookie on ann's app: %d %s", status, body)
	}
	// A cookie forged from bob's with ann's session in it fails its
	// signature.
	forged := strings.Replace(bobCookie.Value, bobs.ID, e.sess.ID, 1)
	if status, _, _ = appGet(t, base, prefix, "berth_app="+forged); status != http.StatusForbidden {
		t.Fatalf("a forged cookie: %d", status)
	}

	// A token opens once.
	r = e.appToken(e.ann, e.sess.ID, "web")
	wantStatus(t, r, http.StatusCreated)
	var tok api.AppToken
	r.JSON(t, &tok)
	for i, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		resp, err := noRedirects.Get(tok.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("opening a token the %d. time: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if status, _, _ = appGet(t, base, "/_berth/open?token=nonsense", ""); status != http.StatusUnauthorized {
		t.Errorf("a made-up token: %d", status)
	}

	// Without its trailing slash, the app's address redirects to it.
	if status, _, h := appGet(t, base, "/s/"+e.sess.ID+"/web?q=1", ""); status != http.StatusPermanentRedirect || h.Get("Location") != prefix+"?q=1" {
		t.Errorf("no trailing slash: %d to %q", status, h.Get("Location"))
	}
	// Nothing but apps is served there.
	if status, _, _ = appGet(t, base, "/v1/auth/whoami", console); status != http.StatusNotFound {
		t.Errorf("the API through the apps origin: %d", status)
	}

	// WebSockets reach the app too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+e.s.AppsAddr()+prefix+"ws", &websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}})
	if err != nil {
		t.Fatalf("a WebSocket to the app: %v", err)
	}
	defer c.CloseNow()
	_ = c.Write(ctx, websocket.MessageText, []byte("hi"))
	if _, b, err := c.Read(ctx); err != nil || string(b) != "echo hi" {
		t.Fatalf("through the app's WebSocket: %q, %v", b, err)
	}
}

// An app that is not there, or that does not answer, is 502 with why.
func TestAnAppThatDoesNotAnswerIs502WithTheReason(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t, withApps(""))
	cookie := e.openApp(e.ann, e.sess.ID, "web")
	base := "http://" + e.s.AppsAddr()
	prefix := "/s/" + e.sess.ID + "/web/"

	e.fa.port(8080, "127.0.0.1:1")
	status, body, _ := appGet(t, base, prefix, cookie.Name+"="+cookie.Value)
	var p api.Problem
	_ = json.Unmarshal([]byte(body), &p)
	if status != http.StatusBadGateway || !strings.Contains(p.Detail, "app web of session "+e.sess.ID+" did not answer: nothing answers on port 8080: connection refused") {
		t.Fatalf("nothing listening: %d %s", status, body)
	}

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	e.fa.port(8080, silent.Addr().String())
	start := time.Now()
	status, body, _ = appGet(t, base, prefix, cookie.Name+"="+cookie.Value)
	_ = json.Unmarshal([]byte(body), &p)
	if status != http.StatusBadGateway || !strings.Contains(p.Detail, "it did not answer within 1s") || time.Since(start) > 15*time.Second {
		t.Fatalf("a silent app: %d %s after %v", status, body, time.Since(start))
	}
}

// With -apps-domain each session has an origin of its own, and its apps
// are served there only.
func TestWithAnAppsDomainEachSessionHasAnOriginOfItsOwn(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t, withApps("apps.test"))
	app := appServer(t)
	e.fa.port(8080, strings.TrimPrefix(app.URL, "http://"))
	r := e.appToken(e.ann, e.sess.ID, "web")
	wantStatus(t, r, http.StatusCreated)
	var tok api.AppToken
	r.JSON(t, &tok)
	u, _ := url.Parse(tok.URL)
	if want := e.sess.ID + ".apps.test:" + portOf(e.s.AppsAddr()); u.Host != want {
		t.Fatalf("token URL %s: want host %s", tok.URL, want)
	}
	get := func(host, path, cookies string) (int, string, http.Header) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.s.AppsAddr()+path, nil)
		req.Host = host
		if cookies != "" {
			req.Header.Set("Cookie", cookies)
		}
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	// The token opens on its session's host only.
	if status, _, _ := get("other.apps.test", u.RequestURI(), ""); status != http.StatusNotFound {
		t.Fatalf("the token on another session's host: %d", status)
	}
	status, _, h := get(u.Host, u.RequestURI(), "")
	if status != http.StatusSeeOther {
		t.Fatalf("the token on its host: %d", status)
	}
	var cookie string
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "berth_app" {
			cookie = c.Name + "=" + c.Value
		}
	}
	prefix := "/s/" + e.sess.ID + "/web/"
	if status, body, _ := get(u.Host, prefix, cookie); status != http.StatusOK || !strings.Contains(body, "prefix=/s/"+e.sess.ID+"/web") {
		t.Fatalf("the app on its host: %d %s", status, body)
	}
	if status, _, _ := get("127.0.0.1", prefix, cookie); status != http.StatusNotFound {
		t.Fatalf("the app on a host that is not its session's: %d", status)
	}
}
