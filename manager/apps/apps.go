// Package apps serves sessions' web apps (their declared http ports) on the
// apps origin: a listener of its own (-apps-addr), a site apart from the
// console and the API, so that a page a session serves never runs where
// the console's cookie or the API are: it cannot read the console's
// cookie, and cannot call the API as the person viewing it.
//
// An app is at /s/{session}/{name}/ (on the host {session}.DOMAIN when
// -apps-domain gives each session an origin of its own). The session's
// owner gets a one-time token from the API, opens the URL that carries it
// here, and receives a cookie for that app alone; every request is then
// proxied, path unchanged, through the agent of the session's first
// container to the container's address and port (manager/agentclient's
// tunnel), WebSockets included.
package apps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/agentclient"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// Names on the apps origin.
const (
	// CookieName is the app cookie. The console's cookie (berth_session)
	// is never read here and never passed to an app.
	CookieName = "berth_app"
	// OpenPath takes a token and sets the cookie.
	OpenPath = "/_berth/open"
	// PrefixHeader tells the app the path it is served under.
	PrefixHeader = "X-Forwarded-Prefix"
)

// Prefix is the path app name of session is served under, which its
// container also finds in BERTH_APP_PREFIX_{NAME} (Jupyter's base_url).
func Prefix(session, name string) string { return "/s/" + session + "/" + name + "/" }

// EnvName is the variable a container finds Prefix in: BERTH_APP_PREFIX_
// and the name in capitals, '-' as '_'.
func EnvName(name string) string {
	return "BERTH_APP_PREFIX_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Config is what the apps origin needs.
type Config struct {
	// Read is the replicated state as this manager has applied it.
	Read func() *state.Txn
	// Agents dials the agents (their tunnels).
	Agents *agentclient.Client
	// Domain (-apps-domain, HOST or HOST:PORT) gives each session an
	// origin of its own, {session}.HOST; empty: every app is on the host
	// name the API was reached at, at Port.
	Domain string
	// Port is the apps listener's port as users reach it.
	Port string
	// HTTPS: the listener serves TLS.
	HTTPS bool
	Log   *slog.Logger
	Now   func() time.Time
	// TokenTTL is how long a token may wait to be opened (1m); CookieTTL
	// how long an app's cookie lasts (12h).
	TokenTTL, CookieTTL time.Duration
	// AnswerTimeout bounds the wait for an app's answer (30s); past it,
	// 502 saying so.
	AnswerTimeout time.Duration
}

// Server is the apps origin's handler.
type Server struct {
	cfg       Config
	used      usedTokens
	proxy     *httputil.ReverseProxy
	transport *http.Transport
}

// New builds the apps origin.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Minute
	}
	if cfg.CookieTTL <= 0 {
		cfg.CookieTTL = 12 * time.Hour
	}
	if cfg.AnswerTimeout <= 0 {
		cfg.AnswerTimeout = 30 * time.Second
	}
	s := &Server{cfg: cfg}
	s.transport = &http.Transport{
		// Each connection to an app is a tunnel through its agent; the
		// request's context carries which (see target).
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			t, ok := ctx.Value(targetKey{}).(target)
			if !ok {
				return nil, errors.New("no app to connect to")
			}
			return cfg.Agents.Tunnel(ctx, t.agent, t.container, t.port)
		},
		ResponseHeaderTimeout: cfg.AnswerTimeout,
		IdleConnTimeout:       30 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	s.proxy = &httputil.ReverseProxy{
		Transport:      s.transport,
		Rewrite:        s.rewrite,
		ModifyResponse: dropBerthCookies,
		ErrorHandler:   s.failed,
		FlushInterval:  -1, // server-sent events and the like arrive as they are written
	}
	return s
}

// Close drops the idle connections to apps.
func (s *Server) Close() { s.transport.CloseIdleConnections() }

func (s *Server) key() ([]byte, error) {
	secret, err := s.cfg.Read().Setting(state.SettingClusterSecret)
	if err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, errors.New("the cluster has no secret yet")
	}
	return key(secret), nil
}

// Issue implements httpapi.AppTokens.
func (s *Server) Issue(session, name, user, apiHost string) (api.AppToken, error) {
	k, err := s.key()
	if err != nil {
		return api.AppToken{}, fmt.Errorf("sign an app token: %w", err)
	}
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return api.AppToken{}, fmt.Errorf("app token nonce: %w", err)
	}
	exp := s.cfg.Now().Add(s.cfg.TokenTTL).Truncate(time.Second)
	tok := sign(k, grant{Kind: kindToken, Session: session, App: name, User: user, Expires: exp.Unix(), Nonce: hex.EncodeToString(n[:])})
	u := url.URL{Scheme: s.scheme(), Host: s.host(session, apiHost), Path: OpenPath, RawQuery: url.Values{"token": {tok}}.Encode()}
	return api.AppToken{URL: u.String(), ExpiresAt: exp.UTC()}, nil
}

func (s *Server) scheme() string {
	if s.cfg.HTTPS {
		return "https"
	}
	return "http"
}

// host is where session's apps are, as users reach them.
func (s *Server) host(session, apiHost string) string {
	if s.cfg.Domain != "" {
		name, port, err := net.SplitHostPort(s.cfg.Domain)
		if err != nil {
			name, port = s.cfg.Domain, s.cfg.Port
		}
		if (s.cfg.HTTPS && port == "443") || (!s.cfg.HTTPS && port == "80") {
			return session + "." + name
		}
		return net.JoinHostPort(session+"."+name, port)
	}
	name, _, err := net.SplitHostPort(apiHost)
	if err != nil {
		name = apiHost
	}
	return net.JoinHostPort(strings.Trim(name, "[]"), s.cfg.Port)
}

// ServeHTTP serves the apps origin: OpenPath and the apps under /s/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == OpenPath {
		s.open(w, r)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/s/")
	if !ok {
		problem(w, http.StatusNotFound, api.ProblemNotFound, "the apps origin serves sessions' apps only, at /s/{session}/{app}/; the console and the API are elsewhere")
		return
	}
	session, rest, _ := strings.Cut(rest, "/")
	name, _, hasSlash := strings.Cut(rest, "/")
	if session == "" || name == "" {
		problem(w, http.StatusNotFound, api.ProblemNotFound, "an app's address is /s/{session}/{app}/")
		return
	}
	if !hasSlash {
		u := *r.URL
		u.Path = Prefix(session, name)
		http.Redirect(w, r, u.RequestURI(), http.StatusPermanentRedirect)
		return
	}
	if !s.hostServes(r.Host, session) {
		problem(w, http.StatusNotFound, api.ProblemNotFound, fmt.Sprintf("the apps of session %s are served at %s, not at %s", session, s.host(session, r.Host), r.Host))
		return
	}
	t, status, why := s.authorize(r, session, name)
	if status != 0 {
		problem(w, status, problemTypes[status], why)
		return
	}
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, t)))
}

// hostServes tells whether host may serve session's apps: any host
// without a domain; {session}.DOMAIN with one.
func (s *Server) hostServes(host, session string) bool {
	if s.cfg.Domain == "" {
		return true
	}
	name, _, err := net.SplitHostPort(host)
	if err != nil {
		name = host
	}
	domain, _, err := net.SplitHostPort(s.cfg.Domain)
	if err != nil {
		domain = s.cfg.Domain
	}
	return strings.EqualFold(name, session+"."+domain)
}

// open takes a token (GET OpenPath?token=…), sets the app's cookie and
// sends the browser to the app.
func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		problem(w, http.StatusMethodNotAllowed, api.ProblemMethod, "open an app's link with GET")
		return
	}
	k, err := s.key()
	if err != nil {
		problem(w, http.StatusServiceUnavailable, api.ProblemNoLeader, err.Error())
		return
	}
	now := s.cfg.Now()
	g, err := verify(k, r.URL.Query().Get("token"), kindToken)
	switch {
	case err != nil:
		problem(w, http.StatusUnauthorized, api.ProblemUnauthorized, "this link carries no valid app token; open the app again from the console (its OPEN button) or ask the API for one: POST /v1/sessions/{id}/apps/{name}/token")
		return
	case !now.Before(time.Unix(g.Expires, 0)):
		problem(w, http.StatusUnauthorized, api.ProblemUnauthorized, "this app link expired; open the app again from the console")
		return
	case !s.hostServes(r.Host, g.Session):
		problem(w, http.StatusNotFound, api.ProblemNotFound, fmt.Sprintf("this link is for %s, not %s", s.host(g.Session, r.Host), r.Host))
		return
	case !s.used.take(g.Nonce, time.Unix(g.Expires, 0), now):
		problem(w, http.StatusUnauthorized, api.ProblemUnauthorized, "this app link was used already; links open once: open the app again from the console")
		return
	}
	exp := now.Add(s.cfg.CookieTTL)
	cookie := sign(k, grant{Kind: kindCookie, Session: g.Session, App: g.App, User: g.User, Expires: exp.Unix()})
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: cookie, Path: Prefix(g.Session, g.App), Expires: exp,
		HttpOnly: true, Secure: s.cfg.HTTPS, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, Prefix(g.Session, g.App), http.StatusSeeOther)
}

// target is where one request to an app goes.
type target struct {
	agent     *state.Agent
	container string
	port      int
}

type targetKey struct{}

// authorize finds the request's app cookie for app name of session and
// checks that its user may use the app now. status 0: allowed, t is where
// it goes.
func (s *Server) authorize(r *http.Request, session, name string) (t target, status int, why string) {
	cookies := r.CookiesNamed(CookieName)
	if len(cookies) == 0 {
		return t, http.StatusUnauthorized, fmt.Sprintf("no app cookie: open the app from the console (its OPEN button) or with a token from the API: POST /v1/sessions/%s/apps/%s/token", session, name)
	}
	k, err := s.key()
	if err != nil {
		return t, http.StatusServiceUnavailable, err.Error()
	}
	now := s.cfg.Now()
	var g grant
	found := false
	for _, c := range cookies {
		cg, err := verify(k, c.Value, kindCookie)
		if err == nil && cg.Session == session && cg.App == name && now.Before(time.Unix(cg.Expires, 0)) {
			g, found = cg, true
			break
		}
	}
	if !found {
		return t, http.StatusForbidden, fmt.Sprintf("this browser's app cookies do not open app %s of session %s (another app's or user's, or expired): open it from the console", name, session)
	}
	tx := s.cfg.Read()
	u, err := tx.User(g.User)
	if err != nil {
		return t, http.StatusServiceUnavailable, err.Error()
	}
	if u == nil || u.Status != api.StatusActive {
		return t, http.StatusForbidden, fmt.Sprintf("user %s is no longer active", g.User)
	}
	sess, err := tx.Session(session)
	if err != nil {
		return t, http.StatusServiceUnavailable, err.Error()
	}
	if sess == nil || sess.Owner != g.User {
		return t, http.StatusForbidden, fmt.Sprintf("session %s is not %s's", session, g.User)
	}
	i := slices.IndexFunc(sess.Ports, func(p api.SessionPort) bool { return p.Name == name && p.Protocol == api.PortHTTP })
	if i < 0 {
		return t, http.StatusNotFound, fmt.Sprintf("session %s declares no app %s", session, name)
	}
	if sess.Status != api.SessionRunning {
		return t, http.StatusConflict, fmt.Sprintf("session %s is %s: its apps are served while it is RUNNING", session, sess.Status)
	}
	for _, ct := range sess.Containers {
		if ct.Index != 0 || ct.Agent == "" {
			continue
		}
		ag, err := tx.Agent(ct.Agent)
		if err != nil {
			return t, http.StatusServiceUnavailable, err.Error()
		}
		if ag == nil || ag.Address == "" {
			break
		}
		return target{agent: ag, container: state.ContainerID(session, 0), port: sess.Ports[i].Port}, 0, ""
	}
	return t, http.StatusConflict, fmt.Sprintf("session %s has no container placed on a known agent", session)
}

// rewrite passes the request on, path unchanged (an app configured with its
// prefix, as Jupyter's base_url, routes under it), without Berth's cookies,
// with X-Forwarded-Prefix and the usual X-Forwarded-* set, to a host name
// that is the container and port (it keys the pool of tunnels).
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(targetKey{}).(target)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = net.JoinHostPort(t.container, strconv.Itoa(t.port))
	pr.Out.Host = pr.In.Host // apps that check Origin against Host (Jupyter) see the browser's
	pr.SetXForwarded()
	session, name := sessionAndApp(pr.In.URL.Path)
	pr.Out.Header.Set(PrefixHeader, strings.TrimSuffix(Prefix(session, name), "/"))
	stripBerthCookies(pr.Out.Header)
}

func sessionAndApp(path string) (session, name string) {
	rest := strings.TrimPrefix(path, "/s/")
	session, rest, _ = strings.Cut(rest, "/")
	name, _, _ = strings.Cut(rest, "/")
	return session, name
}

// stripBerthCookies removes every cookie whose name starts with berth_ (the
// app cookie; the console's, which a browser sends here when the apps
// origin shares the console's host name) from what goes to the app.
func stripBerthCookies(h http.Header) {
	var keep []string
	for _, line := range h.Values("Cookie") {
		for _, part := range strings.Split(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name == "" || strings.HasPrefix(strings.ToLower(name), "berth_") {
				continue
			}
			keep = append(keep, strings.TrimSpace(part))
		}
	}
	h.Del("Cookie")
	if len(keep) > 0 {
		h.Set("Cookie", strings.Join(keep, "; "))
	}
}

// dropBerthCookies removes what an app's answer would set under Berth's
// names: an app could otherwise plant a cookie the console (same host name
// at another port) or this origin would read.
func dropBerthCookies(resp *http.Response) error {
	var keep []string
	for _, sc := range resp.Header.Values("Set-Cookie") {
		name, _, _ := strings.Cut(strings.TrimSpace(sc), "=")
		if strings.HasPrefix(strings.ToLower(name), "berth_") {
			continue
		}
		keep = append(keep, sc)
	}
	resp.Header.Del("Set-Cookie")
	for _, sc := range keep {
		resp.Header.Add("Set-Cookie", sc)
	}
	return nil
}

// failed answers a request the app could not: 502 with the reason.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, err error) {
	session, name := sessionAndApp(r.URL.Path)
	var why string
	var ref *agentclient.Refused
	var ne net.Error
	switch {
	case errors.As(err, &ref):
		why = ref.Detail
	case errors.Is(err, context.Canceled):
		return // the browser went away
	case errors.As(err, &ne) && ne.Timeout():
		why = fmt.Sprintf("it did not answer within %s", s.cfg.AnswerTimeout)
	default:
		why = err.Error()
	}
	s.cfg.Log.Info("app did not answer", "session", session, "app", name, "err", err)
	problem(w, http.StatusBadGateway, problemApp, fmt.Sprintf("app %s of session %s did not answer: %s", name, session, why))
}

const problemApp = "https://berth.dev/problems/app"

// problemTypes are the problem types of the apps origin's refusals, as the
// API names them.
var problemTypes = map[int]string{
	http.StatusUnauthorized:       api.ProblemUnauthorized,
	http.StatusForbidden:          api.ProblemForbidden,
	http.StatusNotFound:           api.ProblemNotFound,
	http.StatusConflict:           api.ProblemConflict,
	http.StatusServiceUnavailable: api.ProblemNoLeader,
}

func problem(w http.ResponseWriter, status int, typ, detail string) {
	w.Header().Set("Content-Type", api.ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail})
}
