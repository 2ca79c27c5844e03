// Package server assembles one berth-manager: the Raft node and its FSM, the
// HTTP API and the leader's duties (manager/leader), with what a leadership
// must write before its duties start (member records, the first-start
// objects). Tests start several in one process.
package server

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/httpapi"
	"github.com/berth-cluster/berth/manager/leader"
	"github.com/berth-cluster/berth/manager/sched"
	"github.com/berth-cluster/berth/manager/secrets"
	"github.com/berth-cluster/berth/shared/flagenv"
	"github.com/berth-cluster/berth/shared/tlsfiles"
)

// Peer is one manager of a statically configured cluster.
type Peer struct {
	ID       string
	RaftAddr string
	HTTPAddr string
}

// ParsePeers reads the -peers flag: id=raftaddr=httpaddr,...
func ParsePeers(s string) ([]Peer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Peer
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		parts := strings.Split(strings.TrimSpace(item), "=")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return nil, fmt.Errorf("peer %q must be id=raftaddr=httpaddr", item)
		}
		if seen[parts[0]] {
			return nil, fmt.Errorf("peer id %s is listed twice", parts[0])
		}
		seen[parts[0]] = true
		out = append(out, Peer{ID: parts[0], RaftAddr: parts[1], HTTPAddr: parts[2]})
	}
	return out, nil
}

// RaftTiming shortens Raft's timers (tests); zero values keep the defaults.
type RaftTiming struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
}

// Config is everything one manager needs.
type Config struct {
	NodeID   string
	HTTPAddr string // listen address; port 0 picks one
	// RaftAddr is the Raft listen address (port 0 picks one); empty with
	// Dev, whose Raft transport is in memory.
	RaftAddr string
	// AdvertiseHTTP is what peers and clients dial (default: the bound address).
	AdvertiseHTTP string
	DataDir       string

	Dev             bool
	BootstrapExpect int
	Peers           []Peer
	Join            string // HTTP address of a running manager
	JoinToken       string

	// TLS, when a certificate is given, serves the API over HTTPS and the
	// Raft traffic over mutual TLS, and dials peer managers with TLS.CA
	// (flags -tls-cert, -tls-key, -tls-ca). Every manager but a -dev one
	// needs it, unless InsecureRaft says otherwise.
	TLS tlsfiles.Files
	// InsecureRaft runs Raft over plaintext TCP (-insecure-raft), for an
	// isolated network only: Raft has no authentication of its own, so
	// anyone who reaches the port can rewrite the replicated state.
	InsecureRaft bool
	// AgentTLS dials the agents' API (exec, logs) over HTTPS, trusting
	// TLS.CA: set it when the agents run with -tls-cert.
	AgentTLS bool

	// AppsAddr, when set, is where the apps origin listens (-apps-addr):
	// sessions' web apps, on a site apart from the console and the API
	// (manager/apps). AppsDomain (-apps-domain, HOST[:PORT]) gives each
	// session an origin of its own, {session}.HOST, which needs a wildcard
	// DNS name (and certificate); without it apps are served at the host
	// name the API was reached at, on AppsAddr's port.
	AppsAddr   string
	AppsDomain string
	// AppsAnswerTimeout bounds the wait for an app's answer (default 30s;
	// tests shorten it).
	AppsAnswerTimeout time.Duration

	AgentToken       string
	HeartbeatTimeout time.Duration
	// DisconnectGrace is how long an agent silent past HeartbeatTimeout
	// stays DISCONNECTED, its sessions and slots kept, before it is LOST
	// (-disconnect-grace; zero: leader.DefaultDisconnectGrace). It may not
	// be below HeartbeatTimeout.
	DisconnectGrace time.Duration
	FolderHosts     map[string]string

	// AgentTokenNeedsApproval: agents that register with AgentToken wait
	// for a superadmin's approval before they take sessions
	// (-agent-auto-approve=false). Agents of issued tokens wait unless
	// their token has auto_approve.
	AgentTokenNeedsApproval bool
	// AllowSimulatedAgents admits agents that say they are simulated
	// (-allow-simulated-agents): benchmarks and development only.
	AllowSimulatedAgents bool

	// NoGroupFolders refuses new group folders (-allow-group-folders=false).
	NoGroupFolders bool
	// Secrets seals registry passwords (-secrets-key-file; nil: a registry
	// with a password is refused). Every manager needs the same key.
	Secrets *secrets.Box
	// FolderUsageEvery is how often the leader measures folders (default 30s).
	FolderUsageEvery time.Duration
	// FolderUID and FolderGID own every folder directory (0770) and
	// uploaded file (0660): the agents' container user, or a group it is
	// in (-folder-uid, -folder-gid; 0: DefaultFolderID).
	FolderUID, FolderGID int
	// HTTPLimits bound each request's time and the uploads in flight
	// (-max-uploads-per-user, -max-uploads; zero fields: the defaults).
	HTTPLimits httpapi.Limits

	// KeypairTouchEvery is how often the leader records keypairs' last use
	// (default 15s).
	KeypairTouchEvery time.Duration
	// IdleCheckEvery is how often the leader records sessions' activity
	// and ends idle and overlong sessions (default 5s).
	IdleCheckEvery time.Duration
	// UsageCheckEvery is how often the leader compares the derived
	// occupancy with the session records and the records with what agents
	// report, repairing what differs (default 1m; negative: never).
	UsageCheckEvery time.Duration
	// SessionRetention is how long a finished session stays in the state
	// before the leader collects it (-session-retention; 0: for ever, the
	// zero value; under MinSessionRetention is refused). CollectEvery and
	// MeasureEvery override how often the leader collects and writes what
	// agents measured (default 1m each; tests).
	SessionRetention time.Duration
	CollectEvery     time.Duration
	MeasureEvery     time.Duration

	// Scheduler is the order PENDING sessions are taken in: fifo (the
	// default) or drf. Placement picks agents: concentrated (bin-pack, the
	// default) or dispersed (spread).
	Scheduler string
	Placement string
	// SchedulerSkipAfter is how many tries a session that finds no room
	// holds the head of the queue before it is passed over (default 3).
	SchedulerSkipAfter int
	// SchedulerBatch is the most sessions one plan places (default 512).
	SchedulerBatch int

	BootstrapAdminEmail    string
	BootstrapAdminPassword string
	TokenTTL               time.Duration
	// PasswordCost is the cost of new password hashes (zero: auth's
	// default, OWASP's minimum). Hashes record their cost, so a change
	// applies to passwords set from then on. Tests lower it: at the
	// default, hashing was most of what the API tests spent.
	PasswordCost auth.Cost

	Log          *slog.Logger
	Out          io.Writer // where first-start credentials are printed
	RaftLog      io.Writer
	RaftLogLevel string
	Raft         RaftTiming

	Now  func() time.Time
	Rand io.Reader
}

// MinSessionRetention is the shortest -session-retention: the leader looks
// for finished sessions once a minute, and a shorter retention would
// remove sessions before their owners could read how they ended.
const MinSessionRetention = time.Minute

// DefaultSessionRetention is -session-retention's default.
const DefaultSessionRetention = 7 * 24 * time.Hour

func (c *Config) validate() error {
	var errs []string
	if c.NodeID == "" {
		errs = append(errs, "-node-id is required")
	}
	if c.DataDir == "" {
		errs = append(errs, "-data-dir is required")
	}
	modes := 0
	for _, on := range []bool{c.Dev, len(c.Peers) > 0, c.Join != ""} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		errs = append(errs, "choose one of -dev, -bootstrap-expect/-peers, -join")
	}
	if len(c.Peers) > 0 {
		if c.BootstrapExpect != len(c.Peers) {
			errs = append(errs, fmt.Sprintf("-bootstrap-expect %d but -peers lists %d managers", c.BootstrapExpect, len(c.Peers)))
		}
		self := false
		for _, p := range c.Peers {
			self = self || p.ID == c.NodeID
		}
		if !self {
			errs = append(errs, fmt.Sprintf("-peers must include this manager (-node-id %s)", c.NodeID))
		}
	} else if c.BootstrapExpect > 1 {
		errs = append(errs, "-bootstrap-expect needs -peers listing every manager as id=raftaddr=httpaddr")
	}
	if err := c.TLS.Check("tls-", true); err != nil {
		errs = append(errs, err.Error())
	}
	errs = append(errs, c.raftSecurityProblems()...)
	if _, err := sched.ParseOrder(c.Scheduler); err != nil {
		errs = append(errs, "-"+err.Error())
	}
	if _, err := sched.ParseStrategy(c.Placement); err != nil {
		errs = append(errs, "-"+err.Error())
	}
	if c.SessionRetention < 0 || (c.SessionRetention > 0 && c.SessionRetention < MinSessionRetention) {
		errs = append(errs, fmt.Sprintf("-session-retention %s: keep finished sessions at least %s (0 keeps them for ever)", c.SessionRetention, MinSessionRetention))
	}
	errs = append(errs, flagenv.CheckHosts(c.FolderHosts)...)
	errs = append(errs, c.appsProblems()...)
	if c.FolderUID < 0 || c.FolderGID < 0 || (c.FolderUID == 0) != (c.FolderGID == 0) {
		// 0 for both is the default; root's folders could not be written
		// by sessions, which never run as the host's root.
		errs = append(errs, fmt.Sprintf("-folder-uid %d and -folder-gid %d must both be positive ids (the agents' container user and group)", c.FolderUID, c.FolderGID))
	}
	errs = append(errs, c.livenessProblems()...)
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(errs, "; "))
	}
	return nil
}

// livenessProblems: the grace is counted from the last heartbeat, and an
// agent becomes DISCONNECTED only after the heartbeat timeout, so a grace
// below the timeout would be a LOST that skips DISCONNECTED.
func (c *Config) livenessProblems() []string {
	var errs []string
	timeout := cmp.Or(c.HeartbeatTimeout, leader.DefaultHeartbeatTimeout)
	switch {
	case c.HeartbeatTimeout < 0:
		errs = append(errs, fmt.Sprintf("-heartbeat-timeout %s must be positive", c.HeartbeatTimeout))
	case c.DisconnectGrace < 0:
		errs = append(errs, fmt.Sprintf("-disconnect-grace %s must not be negative: it is how long a disconnected agent keeps its sessions", c.DisconnectGrace))
	case c.DisconnectGrace != 0 && c.DisconnectGrace < timeout:
		errs = append(errs, fmt.Sprintf("-disconnect-grace %s is below -heartbeat-timeout %s: an agent is only disconnected after the timeout, and the grace counts from its last heartbeat, so it must be at least the timeout", c.DisconnectGrace, timeout))
	}
	return errs
}

// ErrRaftNeedsTLS is the refusal of a manager that would serve Raft to the
// network without mutual TLS and was not told to.
const ErrRaftNeedsTLS = "a manager that is not -dev serves Raft on -raft-addr, and Raft has no authentication of its own: " +
	"whoever reaches the port can rewrite the cluster state. Give every manager mutual TLS with -tls-cert, -tls-key and -tls-ca " +
	"(make them with: berth tls ca create; berth tls cert create -manager -additional-ipaddress IP -name NODE; see deploy/README.md), " +
	"or, on an isolated network only, accept plaintext Raft with -insecure-raft"

// raftSecurityProblems are the rules that keep the Raft port closed to
// strangers: in memory for -dev, mutual TLS otherwise unless
// -insecure-raft says so by name, and the join token never in plaintext
// across the network.
func (c *Config) raftSecurityProblems() []string {
	var errs []string
	if c.Dev {
		if c.RaftAddr != "" {
			errs = append(errs, "-raft-addr means nothing with -dev: a -dev manager keeps Raft in memory and opens no Raft port")
		}
		if c.InsecureRaft {
			errs = append(errs, "-insecure-raft means nothing with -dev: a -dev manager opens no Raft port")
		}
		return errs
	}
	switch {
	case c.InsecureRaft && c.TLS.Serving():
		errs = append(errs, "-insecure-raft contradicts -tls-cert: with a certificate Raft runs over mutual TLS; drop one of them")
	case !c.InsecureRaft && !c.TLS.Serving():
		errs = append(errs, ErrRaftNeedsTLS)
	}
	if c.Join != "" {
		if err := checkJoinURL(c.Join, c.joinURL()); err != nil {
			errs = append(errs, err.Error())
		}
	}
	return errs
}

// joinURL is the base URL -join is dialed at: as given, or with the scheme
// peers are dialed with (https with TLS on).
func (c *Config) joinURL() string {
	if strings.HasPrefix(c.Join, "http://") || strings.HasPrefix(c.Join, "https://") {
		return strings.TrimSuffix(c.Join, "/")
	}
	scheme := "http"
	if c.TLS.Serving() {
		scheme = "https"
	}
	return scheme + "://" + c.Join
}

// checkJoinURL lets the join token travel over HTTPS, or in plaintext only
// to this host: the token admits a manager to the cluster.
func checkJoinURL(given, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-join %s is not a manager's address (host:port or URL)", given)
	}
	if u.Scheme == "https" || isLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("-join %s would send the join token across the network in plaintext: "+
		"give this manager -tls-cert, -tls-key and -tls-ca so it joins over HTTPS (https:// or host:port), or join through a manager on this host (loopback)", given)
}

// isLoopbackHost reports whether host (a name or an IP, no port) is this
// host's loopback.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// schedOptions reads the scheduler's part of the configuration (validated
// by Config.validate).
func (c *Config) schedOptions() sched.Options {
	order, _ := sched.ParseOrder(c.Scheduler)
	strategy, _ := sched.ParseStrategy(c.Placement)
	batch := c.SchedulerBatch
	if batch <= 0 {
		batch = sched.DefaultBatch
	}
	return sched.Options{Order: order, Strategy: strategy, SkipAfter: c.SchedulerSkipAfter, Batch: batch}
}

// appsProblems checks -apps-addr and -apps-domain.
func (c *Config) appsProblems() []string {
	if c.AppsDomain == "" {
		return nil
	}
	if c.AppsAddr == "" {
		return []string{"-apps-domain needs -apps-addr: the apps origin's listener"}
	}
	host, port, err := net.SplitHostPort(c.AppsDomain)
	if err != nil {
		host, port = c.AppsDomain, ""
	}
	if !appsDomain.MatchString(host) || (port != "" && !allDigits(port)) {
		return []string{fmt.Sprintf("-apps-domain %q must be a DNS name, optionally with :PORT (e.g. apps.example.com); each session gets SESSION.%s", c.AppsDomain, host)}
	}
	return nil
}

// appsDomain is a DNS name of at least two labels (localhost counts too,
// for development: browsers resolve *.localhost to loopback).
var appsDomain = regexp.MustCompile(`^(localhost|([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)$`)

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
