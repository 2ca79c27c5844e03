// Package httpapi serves the manager's HTTP API: one route table (routes.go)
// from which the mux, the role checks, the forwarding rules and the OpenAPI
// document are all derived, so they cannot disagree.
package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/folderfs"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/raftnode"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/sign"
)

// Cluster is what the API needs of the Raft side of the manager.
type Cluster interface {
	// Propose commits a command and returns the FSM's response; a rule the
	// command broke comes back as Response.Err.
	Propose(ctx context.Context, c fsm.Command) (*fsm.Response, error)
	// ProposeSessionCreate commits one new session, batched with the
	// creates that arrive with it into one entry; the response is this
	// session's alone (Value the session recorded, or Err its rule).
	ProposeSessionCreate(ctx context.Context, s state.Session) (*fsm.Response, error)
	State() *state.Store
	Node() *raftnode.Node
	// HTTPAddr is this manager's advertised HTTP address.
	HTTPAddr() string
	// AppliedIndex is the index of the last entry the FSM applied.
	AppliedIndex() uint64
	// WaitIndex returns the applied index once it is greater than after,
	// or, when ctx ends first, the applied index then with ctx's error
	// (blocking queries).
	WaitIndex(ctx context.Context, after uint64) (uint64, error)
}

// Config holds the API's tunables and external edges.
type Config struct {
	Cluster  Cluster
	Log      *slog.Logger
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	Now      func() time.Time
	Rand     io.Reader
	// TokenTTL is how long a login token lives.
	TokenTTL time.Duration
	// JoinToken, when set, lets managers started with -join add themselves.
	JoinToken string
	// AgentToken, when set, lets agents register (the managers' -agent-token).
	AgentToken string
	// AgentTokenNeedsApproval: agents registered with AgentToken wait for
	// a superadmin's approval, as those of a token without auto_approve do
	// (-agent-auto-approve=false).
	AgentTokenNeedsApproval bool
	// PeerScheme is how other managers' API is dialed ("http" when empty,
	// "https" with TLS on); PeerTransport dials them (forwarding to the
	// leader, health probes; nil: http.DefaultTransport).
	PeerScheme    string
	PeerTransport http.RoundTripper
	// AgentScheme and AgentTransport are the same for the agents' API.
	AgentScheme    string
	AgentTransport http.RoundTripper
	// LoginBurst attempts per email and per client address, then one per LoginEvery.
	LoginBurst int
	LoginEvery time.Duration
	// Console, when set, answers the GET and HEAD requests no route
	// matches outside /v1/ (the web console at /); the API's own paths
	// always win.
	Console http.Handler
	// Folders holds the files of the storage folders on the hosts this
	// manager has (-folder-host); nil: none.
	Folders *folderfs.Store
	// NoGroupFolders refuses new group folders (-allow-group-folders=false).
	NoGroupFolders bool
}

// API is the HTTP handler of one manager.
type API struct {
	cfg          Config
	cluster      Cluster
	log          *slog.Logger
	now          func() time.Time
	rnd          io.Reader
	loginByEmail *auth.Limiter
	loginByAddr  *auth.Limiter
	keypairRate  *auth.Limiter
	keypairUses  *lastSeen
	agents       *agentLiveness
	agentMetrics *agentCollector
	sessions     *sessionTracker
	usage        *usageChecks

	// tokenFailures counts failed machine credentials (agent tokens,
	// agent secrets on registration, the join token) per client address.
	tokenFailures *auth.Limiter

	// leaderReady: this manager leads and has applied every entry of
	// earlier terms (see SetLeaderReady).
	leaderReady atomic.Bool
	folders     *folderfs.Store
	routes      []Route
	metrics     *httpMetrics
	mux         *http.ServeMux
}

// New builds the API.
func New(cfg Config) *API {
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 12 * time.Hour
	}
	if cfg.PeerScheme == "" {
		cfg.PeerScheme = "http"
	}
	if cfg.AgentScheme == "" {
		cfg.AgentScheme = "http"
	}
	if cfg.PeerTransport == nil {
		cfg.PeerTransport = http.DefaultTransport
	}
	if cfg.AgentTransport == nil {
		cfg.AgentTransport = http.DefaultTransport
	}
	if cfg.LoginBurst == 0 {
		cfg.LoginBurst = 10
	}
	if cfg.LoginEvery == 0 {
		cfg.LoginEvery = 6 * time.Second
	}
	a := &API{
		cfg: cfg, cluster: cfg.Cluster, log: cfg.Log, now: cfg.Now, rnd: cfg.Rand,
		loginByEmail: auth.NewLimiter(cfg.LoginBurst, cfg.LoginEvery, cfg.Now),
		loginByAddr:  auth.NewLimiter(cfg.LoginBurst*3, cfg.LoginEvery/3, cfg.Now),
		keypairRate:  auth.NewLimiter(1, time.Second, cfg.Now),
		keypairUses:  newLastSeen(),
	}
	a.tokenFailures = auth.NewLimiter(cfg.LoginBurst, cfg.LoginEvery, cfg.Now)
	a.folders = cfg.Folders
	if a.folders == nil {
		a.folders = folderfs.New(nil, 0, 0, cfg.Now)
	}
	a.metrics = newHTTPMetrics(cfg.Metrics)
	a.agents = newAgentLiveness()
	a.sessions = newSessionTracker()
	a.agentMetrics = newAgentCollector(a)
	a.usage = newUsageChecks(cfg.Metrics)
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(a.agentMetrics, newSessionCollector(a))
	}
	a.routes = a.routeTable()
	a.mux = http.NewServeMux()
	for i := range a.routes {
		rt := &a.routes[i]
		a.mux.Handle(rt.Method+" "+rt.Path, a.serve(rt))
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.Console != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(r.URL.Path, "/v1/") {
			sw := &statusWriter{ResponseWriter: w}
			start := time.Now()
			a.cfg.Console.ServeHTTP(sw, r)
			a.metrics.observe("console", r.Method, sw.code(), time.Since(start))
			return
		}
		a.metrics.observe("unmatched", r.Method, http.StatusNotFound, 0)
		writeProblem(w, apierr.Problem(apierr.New(apierr.NotFound, "no route %s %s; see GET /v1/openapi.json", r.Method, r.URL.Path)))
	})
	return a
}

// SetLeaderReady says whether this manager, as leader, has applied every
// entry committed before its term (its barrier returned). Until it has, it
// answers routed requests with 503 no-leader, which clients retry.
func (a *API) SetLeaderReady(ready bool) { a.leaderReady.Store(ready) }

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Routes lists every route (the OpenAPI test walks it).
func (a *API) Routes() []Route { return a.routes }

// Call is one request on its way through a route's handler.
type Call struct {
	W    http.ResponseWriter
	R    *http.Request
	Who  *Identity
	Body []byte
	api  *API
}

// Decode parses the JSON body into v (see DecodeJSON).
func (c *Call) Decode(v any) error { return DecodeJSON(c.Body, v) }

// JSON writes a JSON response.
func (c *Call) JSON(status int, v any) error {
	writeJSON(c.W, status, v)
	return nil
}

// Propose commits a command and turns its outcome into an error the route
// can return as is.
func (c *Call) Propose(cmd fsm.Command) (any, error) {
	resp, err := c.api.cluster.Propose(c.R.Context(), cmd)
	if err != nil {
		return nil, err
	}
	if resp.Err != nil {
		return nil, resp.Err
	}
	return resp.Value, nil
}

// serve wraps a route's handler with, in order: metrics, panic recovery,
// forwarding to the leader, consistency, body limits, authentication and
// the route's role check.
func (a *API) serve(rt *Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.Error("handler panicked", "route", rt.Path, "method", rt.Method, "panic", fmt.Sprint(p))
				if sw.status == 0 {
					writeProblem(sw, apierr.Problem(fmt.Errorf("panic: %v", p)))
				}
			}
			a.metrics.observe(rt.Path, rt.Method, sw.code(), time.Since(start))
		}()
		if err := a.handle(rt, sw, r); err != nil {
			a.fail(sw, r, err)
		}
	})
}

func (a *API) handle(rt *Route, w http.ResponseWriter, r *http.Request) error {
	served, err := a.route(rt, w, r)
	if served || err != nil {
		return err
	}
	c := &Call{W: w, R: r, api: a}
	if !rt.Stream {
		if c.Body, err = readBody(r); err != nil {
			return err
		}
	} else if h := r.Header.Get("Authorization"); strings.HasPrefix(h, sign.Scheme+" ") {
		// A keypair's signature covers the body's hash: the body is read
		// whole (bounded) before the caller is trusted, and only for a
		// well-formed, current signature of an active key.
		if err := a.precheckSigned(r, h); err != nil {
			return err
		}
		if c.Body, err = readUpload(r); err != nil {
			return err
		}
	}
	if rt.Access != Public {
		who, err := a.authenticate(r, c.Body)
		if err != nil {
			if a.forwardUnknownCredential(w, r, c.Body, err) {
				return nil
			}
			return err
		}
		if err := rt.Access.allows(who, r.Method); err != nil {
			return err
		}
		c.Who = who
	}
	return rt.Handle(c)
}

// forwardUnknownCredential sends a request a follower could not
// authenticate to the leader, once: a token or keypair made a moment ago may
// not have reached this follower yet, and the leader has every committed one.
func (a *API) forwardUnknownCredential(w http.ResponseWriter, r *http.Request, body []byte, err error) bool {
	if !apierr.Is(err, apierr.Unauthorized) || a.cluster.Node().IsLeader() || r.Header.Get(hdrForwardedBy) != "" {
		return false
	}
	target, lerr := a.leaderURL()
	if lerr != nil {
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	a.forward(w, r, target)
	return true
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apierr.Error
	switch {
	case errors.As(err, &ae):
		if ae.RetryAfter > 0 {
			retryAfter(w, ae.RetryAfter)
		}
	case errors.Is(err, raftnode.ErrOutcomeUnknown):
		err = apierr.New(apierr.OutcomeUnknown, "leadership changed while this write was being committed: it may or may not have been applied; look before sending it again")
	case errors.Is(err, raftnode.ErrNotLeader):
		err = apierr.New(apierr.Unavailable, "leadership changed before the request was applied; retry it")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		err = apierr.New(apierr.Unavailable, "the request timed out waiting for the cluster; retry it")
	default:
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeProblem(w, apierr.Problem(err))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
