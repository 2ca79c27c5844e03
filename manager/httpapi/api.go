// Package httpapi serves the manager's HTTP API: one route table (routes.go)
// from which the mux, the role checks, the forwarding rules and the OpenAPI
// document are all derived, so they cannot disagree.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/manager/agentclient"
	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/folderfs"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/leader"
	"github.com/berth-cluster/berth/manager/raftnode"
	"github.com/berth-cluster/berth/manager/secrets"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// Cluster is what the handlers need of the replicated state and of this
// manager's place in the cluster: propose, read, wait for an index, who
// leads. Raft is the consensus layer itself, which only the operator's
// routes, health and stale reads look at.
type Cluster interface {
	// Propose commits a command and returns the FSM's response; a rule the
	// command broke comes back as Response.Err.
	Propose(ctx context.Context, c fsm.Command) (*fsm.Response, error)
	// ProposeSessionCreate commits one new session, batched with the
	// creates that arrive with it into one entry; the response is this
	// session's alone (Value the session recorded, or Err its rule).
	ProposeSessionCreate(ctx context.Context, s state.Session) (*fsm.Response, error)
	// Read is a view of the state as this manager has applied it.
	Read() *state.Txn
	// AppliedIndex is the index of the last entry the FSM applied.
	AppliedIndex() uint64
	// WaitIndex returns the applied index once it is greater than after,
	// or, when ctx ends first, the applied index then with ctx's error
	// (blocking queries).
	WaitIndex(ctx context.Context, after uint64) (uint64, error)
	// ID is this manager's node id.
	ID() string
	// Leader is the node id of the leader as this manager knows it; ""
	// when it knows none.
	Leader() string
	// IsLeader says whether this manager believes it leads.
	IsLeader() bool
	// VerifyLeader confirms with a quorum that this manager still leads,
	// so a read served after it is not stale.
	VerifyLeader(ctx context.Context) error
	Raft() Raft
}

// Raft is the consensus layer as the cluster's operator sees it:
// membership, indexes, snapshots.
type Raft interface {
	// State is this manager's Raft role.
	State() raft.RaftState
	// Indexes are the applied and last log index and the current term.
	Indexes() (applied, last, term uint64)
	// LastContact is when this manager last heard from the leader (now,
	// on the leader).
	LastContact() time.Time
	Servers() ([]raft.Server, error)
	AddVoter(id, addr string) error
	RemoveServer(id string) error
	// InMemory: no other manager can reach this one's Raft (-dev).
	InMemory() bool
	// OpenSnapshot takes (or opens the newest) snapshot of the state.
	OpenSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error)
	// Restore replaces the cluster's state with a snapshot of size bytes.
	Restore(r io.Reader, size int64) error
}

// Config holds the API's tunables and external edges.
type Config struct {
	Cluster Cluster
	// Leader runs the leader's duties; the handlers hand it what it must
	// know (heartbeats, activity) and ask it what only it knows.
	Leader   *leader.Leader
	Log      *slog.Logger
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	Now      func() time.Time
	Rand     io.Reader
	// TokenTTL is how long a login token lives.
	TokenTTL time.Duration
	// PasswordCost is the cost of new password hashes (zero: auth's
	// default).
	PasswordCost auth.Cost
	// JoinToken, when set, lets managers started with -join add themselves.
	JoinToken string
	// AgentToken, when set, lets agents register (the managers' -agent-token).
	AgentToken string
	// AgentTokenNeedsApproval: agents registered with AgentToken wait for
	// a superadmin's approval, as those of a token without auto_approve do
	// (-agent-auto-approve=false).
	AgentTokenNeedsApproval bool
	// AllowSimulatedAgents lets agents that say they are simulated
	// (berth-agent -runtime sim) register and heartbeat
	// (-allow-simulated-agents); otherwise they are refused with 403.
	AllowSimulatedAgents bool
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
	// Limits bound each request's time and the uploads in flight.
	Limits Limits
	// SpoolDir holds a snapshot being restored while it is checked (the
	// data directory; empty: the system's temporary directory).
	SpoolDir string
	// Secrets seals and opens registry passwords (-secrets-key-file; nil:
	// no key, and a registry with a password is refused).
	Secrets *secrets.Box
	// Apps issues the tokens of the apps origin, where sessions' web apps
	// are served (manager/apps); nil: this manager serves none.
	Apps AppTokens
	// ActivityEvery is how often an open terminal or port-forward tells
	// the leader its session is in use (the idle duty's period; 0: 5s).
	ActivityEvery time.Duration
}

// AppTokens issues the one-time tokens that open a session's app on the
// apps origin.
type AppTokens interface {
	// Issue makes a token for user to open app name of session, and the
	// address on the apps origin that takes it. apiHost is the host the
	// caller reached the API at (the apps origin's host name when no
	// domain of its own is configured).
	Issue(session, name, user, apiHost string) (api.AppToken, error)
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
	// dummyHash is checked when a login's email is unknown.
	dummyHash string
	leader    *leader.Leader

	// tokenFailures counts failed machine credentials (agent tokens,
	// agent secrets on registration, the join token) per client address.
	tokenFailures *auth.Limiter
	folders       *folderfs.Store
	limits        Limits
	uploads       *uploadSlots
	replays       *replayCache
	routes        []Route
	metrics       *httpMetrics
	mux           *http.ServeMux
	// agents dials the agents' API; streams are the open terminals,
	// port-forwards and followed logs (streams.go).
	agents  *agentclient.Client
	streams *streams
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
	if cfg.ActivityEvery <= 0 {
		cfg.ActivityEvery = leader.DefaultIdleCheckEvery
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
		leader:       cfg.Leader,
		dummyHash:    cfg.PasswordCost.Dummy(),
	}
	a.tokenFailures = auth.NewLimiter(cfg.LoginBurst, cfg.LoginEvery, cfg.Now)
	a.agents = &agentclient.Client{Scheme: cfg.AgentScheme, Transport: cfg.AgentTransport}
	a.streams = newStreams()
	a.limits = cfg.Limits.withDefaults()
	a.uploads = newUploadSlots(a.limits)
	a.replays = newReplayCache()
	a.folders = cfg.Folders
	if a.folders == nil {
		a.folders = folderfs.New(nil, 0, 0, cfg.Now)
	}
	a.metrics = newHTTPMetrics(cfg.Metrics)
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(newAgentCollector(a), newSessionCollector(a))
	}
	a.routes = a.routeTable()
	a.mux = http.NewServeMux()
	for i := range a.routes {
		rt := &a.routes[i]
		a.mux.Handle(rt.Method+" "+rt.Path, a.serve(rt))
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Nothing here reads a body, but net/http may drain one after the
		// answer: bound that too.
		if r.ContentLength != 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(a.limits.BodyTimeout))
		}
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

// Propose commits a command whose value the handler does not need, and
// turns its outcome into an error the route can return as is.
func (c *Call) Propose(cmd fsm.Command) error {
	_, err := c.api.commit(c.R.Context(), cmd)
	return err
}

// propose commits a command and returns its applier's value as the type
// that applier returns (for fsm.AgentPut, *state.Agent), or the rule the
// command broke as an error the route can return as is.
func propose[T any](c *Call, cmd fsm.Command) (T, error) {
	resp, err := c.api.commit(c.R.Context(), cmd)
	if err != nil {
		var zero T
		return zero, err
	}
	return fsm.Value[T](resp)
}

func (a *API) commit(ctx context.Context, cmd fsm.Command) (*fsm.Response, error) {
	resp, err := a.cluster.Propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if resp.Err != nil {
		return nil, resp.Err
	}
	return resp, nil
}

// serve wraps a route's handler with, in order: metrics, panic recovery,
// deadlines, forwarding to the leader, consistency, authentication, body
// limits and checks, and the route's role check.
func (a *API) serve(rt *Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// The body goes back as net/http made it before the answer is
		// written: net/http looks at its own type to decide to close the
		// connection rather than drain a body nobody read.
		orig := r.Body
		sw := &statusWriter{ResponseWriter: w, answering: func() { r.Body = orig }}
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

// handle serves one request. The caller is authenticated from the headers
// alone, before any byte of the body is read (the one exception: a keypair
// signature made without X-Berth-Content-SHA256 on a small JSON route, see
// keypairIdentity); then a body that is not a stream is read, at most
// MaxBody, and checked against its content hash as it arrives. Stream
// routes read their own body, under the same check, holding an upload slot.
func (a *API) handle(rt *Route, w http.ResponseWriter, r *http.Request) error {
	rc := http.NewResponseController(w)
	a.timeBody(rt, w, r)
	if !rt.Stream && !rt.Long {
		// A client that does not read its answer holds the handler no
		// longer than this. Unsupported only under test recorders.
		_ = rc.SetWriteDeadline(time.Now().Add(a.limits.WriteTimeout))
	}
	served, err := a.route(rt, w, r)
	if served || err != nil {
		return err
	}
	c := &Call{W: w, R: r, api: a}
	if rt.Access != Public {
		who, err := a.authenticate(r, rt)
		if err != nil {
			if a.forwardUnknownCredential(w, r, err) {
				return nil
			}
			return err
		}
		if err := rt.Access.allows(who, r.Method); err != nil {
			return err
		}
		c.Who = who
	}
	if err := checkContent(r); err != nil {
		return err
	}
	if rt.Stream {
		if c.Who != nil {
			release, err := a.uploads.take(c.Who.User.Email)
			if err != nil {
				return err
			}
			defer release()
		}
	} else if c.Body, err = readBody(r); err != nil {
		return err
	}
	return rt.Handle(c)
}

// forwardUnknownCredential sends a request a follower could not
// authenticate to the leader, once: a token or keypair made a moment ago may
// not have reached this follower yet, and the leader has every committed one.
// The body goes as it is: unread, or read whole by keypairIdentity and put
// back.
func (a *API) forwardUnknownCredential(w http.ResponseWriter, r *http.Request, err error) bool {
	if !apierr.Is(err, apierr.Unauthorized) || a.cluster.IsLeader() || r.Header.Get(hdrForwardedBy) != "" {
		return false
	}
	target, lerr := a.leaderURL()
	if lerr != nil {
		return false
	}
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
	// answering, when set, runs once before the answer starts.
	answering func()
}

func (s *statusWriter) start(code int) {
	if s.status == 0 {
		s.status = code
		if s.answering != nil {
			s.answering()
		}
	}
}

func (s *statusWriter) WriteHeader(code int) {
	s.start(code)
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.start(http.StatusOK)
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	s.start(http.StatusOK)
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
