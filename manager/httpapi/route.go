package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// Route is one endpoint. The table of them drives the mux, the checks and
// the OpenAPI document.
type Route struct {
	Method  string
	Path    string // net/http pattern, e.g. /v1/users/{email}
	Summary string
	Access  Access
	// Local routes are answered by whichever manager receives them (health,
	// metrics, cluster information); all others are the leader's to answer
	// unless a GET asks for ?stale=true.
	Local bool
	// Stream routes read their own body (uploads), which must keep arriving
	// at Limits.StreamMinBytes per StreamWindow, holding an upload slot;
	// others get it read, bounded to MaxBody and within BodyTimeout, before
	// the handler runs.
	Stream bool
	// Long routes may take minutes to answer (a blocking query, an exec, a
	// download, an export, metrics): they get no write deadline. Others
	// must have answered within Limits.WriteTimeout.
	Long bool
	// In and Out are example values of the request and response bodies for
	// the OpenAPI document; nil when there is none.
	In, Out any
	// Query documents the query parameters the route reads.
	Query []string
	// Status is the success status (200 when zero).
	Status int
	// Produces is the success media type when it is not JSON.
	Produces string
	Handle   func(c *Call) error
}

// Headers a manager sets when it forwards a request to the leader.
const (
	hdrForwardedBy = "X-Berth-Forwarded-By"
	hdrClientAddr  = "X-Berth-Client-Addr"
	hdrClientSig   = "X-Berth-Client-Sig"
	// Stale reads say how old their view may be.
	hdrIndex       = "X-Berth-Index"
	hdrLastContact = "X-Berth-Last-Contact"
	hdrKnownLeader = "X-Berth-Known-Leader"
)

// route decides where the request is answered. It returns served=true when
// it forwarded the request to the leader (the response is written).
func (a *API) route(rt *Route, w http.ResponseWriter, r *http.Request) (served bool, err error) {
	if rt.Local {
		return false, nil
	}
	if r.Method == http.MethodGet && r.URL.Query().Get("stale") == "true" {
		node := a.cluster.Raft()
		applied, _, _ := node.Indexes()
		w.Header().Set(hdrIndex, strconv.FormatUint(applied, 10))
		w.Header().Set(hdrLastContact, strconv.FormatInt(time.Since(node.LastContact()).Milliseconds(), 10))
		w.Header().Set(hdrKnownLeader, strconv.FormatBool(a.cluster.Leader() != ""))
		return false, nil
	}
	if a.cluster.IsLeader() {
		if !a.leader.Ready() {
			// Elected, but entries of earlier terms may not be applied
			// here yet (the leader's barrier is under way): answering now
			// could miss a write the previous leader acknowledged.
			return false, apierr.New(apierr.Unavailable, "this manager was just elected and is catching up with the log; retry the request")
		}
		if r.Method == http.MethodGet {
			if err := a.cluster.VerifyLeader(r.Context()); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	if r.Header.Get(hdrForwardedBy) != "" {
		// Forwarded to a manager that lost leadership meanwhile: one hop
		// only, so a confused cluster cannot bounce requests around.
		return false, apierr.New(apierr.Unavailable, "this manager stopped being the leader; retry the request")
	}
	target, err := a.leaderURL()
	if err != nil {
		return false, err
	}
	a.forward(w, r, target)
	return true, nil
}

func (a *API) leaderURL() (*url.URL, error) {
	id := a.cluster.Leader()
	if id == "" {
		return nil, apierr.New(apierr.Unavailable, "the cluster has no leader right now; retry in a few seconds")
	}
	m, err := a.cluster.Read().Member(id)
	if err != nil {
		return nil, err
	}
	if m == nil || m.HTTPAddr == "" {
		return nil, apierr.New(apierr.Unavailable, "the leader %s has not published its HTTP address yet; retry in a few seconds", id)
	}
	return &url.URL{Scheme: a.cfg.PeerScheme, Host: m.HTTPAddr}, nil
}

func (a *API) forward(w http.ResponseWriter, r *http.Request, target *url.URL) {
	client := a.clientAddr(r)
	secret := a.clusterSecret()
	proxy := &httputil.ReverseProxy{
		Transport: a.cfg.PeerTransport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = r.Host
			pr.Out.Header.Set(hdrForwardedBy, a.cluster.ID())
			pr.Out.Header.Set(hdrClientAddr, client)
			pr.Out.Header.Set(hdrClientSig, signClient(secret, client))
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			a.log.Warn("forward to leader failed", "leader", target.Host, "err", err)
			var op *net.OpError
			if r.Method == http.MethodGet || (errors.As(err, &op) && op.Op == "dial") {
				// Nothing reached the leader (or it was a read): safe to retry.
				writeProblem(w, apierr.Problem(apierr.New(apierr.Unavailable, "could not reach the leader at %s; retry in a few seconds", target.Host)))
				return
			}
			writeProblem(w, apierr.Problem(apierr.New(apierr.OutcomeUnknown,
				"the leader at %s went away while handling this request: it may or may not have been applied; look before sending it again", target.Host)))
		},
	}
	proxy.ServeHTTP(w, r)
}

func (a *API) clusterSecret() string {
	s, err := a.cluster.Read().Setting(state.SettingClusterSecret)
	if err != nil {
		a.log.Error("read cluster secret", "err", err)
	}
	return s
}

func signClient(secret, addr string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(addr))
	return hex.EncodeToString(m.Sum(nil))
}

// clientAddr is the address rate limits apply to: the caller's own, or the
// one a peer manager forwarded for, when the peer proves it knows the
// cluster secret.
func (a *API) clientAddr(r *http.Request) string {
	if fwd := r.Header.Get(hdrClientAddr); fwd != "" && r.Header.Get(hdrForwardedBy) != "" {
		secret := a.clusterSecret()
		want, _ := hex.DecodeString(signClient(secret, fwd))
		got, _ := hex.DecodeString(r.Header.Get(hdrClientSig))
		if secret != "" && hmac.Equal(want, got) {
			return fwd
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Access is who may call a route.
type Access int

// Access levels.
const (
	Public        Access = iota // no credentials
	Authenticated               // any active user
	AdminRead                   // admin, superadmin; monitor for GETs
	Admin                       // admin, superadmin
	Superadmin
)

func (acc Access) allows(who *Identity, method string) error {
	role := who.Role()
	ok := false
	switch acc {
	case Public, Authenticated:
		ok = true
	case AdminRead:
		ok = role == api.RoleSuperadmin || role == api.RoleAdmin || (role == api.RoleMonitor && method == http.MethodGet)
	case Admin:
		ok = role == api.RoleSuperadmin || role == api.RoleAdmin
	case Superadmin:
		ok = role == api.RoleSuperadmin
	}
	if ok {
		return nil
	}
	return apierr.New(apierr.Forbidden, "this operation requires the %s role; you are %s", acc.String(), role)
}

func (acc Access) String() string {
	switch acc {
	case AdminRead, Admin:
		return "admin"
	case Superadmin:
		return "superadmin"
	}
	return fmt.Sprintf("access(%d)", int(acc))
}
