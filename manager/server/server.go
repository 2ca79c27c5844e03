package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/berth-cluster/berth/manager/agentclient"
	"github.com/berth-cluster/berth/manager/apps"
	"github.com/berth-cluster/berth/manager/console"
	"github.com/berth-cluster/berth/manager/folderfs"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/httpapi"
	"github.com/berth-cluster/berth/manager/leader"
	"github.com/berth-cluster/berth/manager/raftnode"
	"github.com/berth-cluster/berth/manager/state"
)

// Server is one running manager.
type Server struct {
	cfg      Config
	log      *slog.Logger
	backend  Backend
	node     *raftnode.Node // nil on a backend other than its own Raft (StartOn)
	api      *httpapi.API
	leader   *leader.Leader
	http     *http.Server
	listener net.Listener
	httpAddr string
	reg      *prometheus.Registry
	folders  *folderfs.Store // folders.go

	// The apps origin (-apps-addr): its listener, server and handler; nil
	// without one.
	appsListener net.Listener
	appsHTTP     *http.Server
	apps         *apps.Server

	mu    sync.Mutex
	peers []Peer

	// peerScheme is how peer managers are dialed (http, or https with TLS
	// on); peerClient dials them.
	peerScheme string
	peerClient *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// httpIdleTimeout closes a kept-alive connection that sends no new request.
const httpIdleTimeout = 2 * time.Minute

// Start opens the Raft node and the HTTP listener and begins serving. A
// -dev node or one with -peers bootstraps its cluster; one with -join asks
// the cluster to add it until it is added.
func Start(cfg Config) (*Server, error) {
	s, tc, err := prepare(&cfg)
	if err != nil {
		return nil, err
	}
	f := fsm.New(s.log)
	node, err := raftnode.Open(raftnode.Config{
		ID: cfg.NodeID, BindAddr: cfg.RaftAddr, DataDir: cfg.DataDir, FSM: f, Logger: s.log,
		RaftLog: cfg.RaftLog, RaftLogLevel: cfg.RaftLogLevel, Metrics: s.reg,
		HeartbeatTimeout: cfg.Raft.HeartbeatTimeout, ElectionTimeout: cfg.Raft.ElectionTimeout,
		LeaderLeaseTimeout: cfg.Raft.LeaderLeaseTimeout, SnapshotThreshold: cfg.Raft.SnapshotThreshold,
		SnapshotInterval: cfg.Raft.SnapshotInterval, TrailingLogs: cfg.Raft.TrailingLogs,
		ServerTLS: tc.raftServer, ClientTLS: tc.raftClient, InMemory: cfg.Dev, Plaintext: cfg.InsecureRaft,
	})
	if err != nil {
		s.listener.Close()
		if s.appsListener != nil {
			s.appsListener.Close()
		}
		return nil, err
	}
	s.node = node
	b := &raftBackend{node: node, fsm: f}
	b.creates = newSessionCreates(s.reg, b.Propose)
	s.serve(b, tc)

	switch {
	case cfg.Dev:
		err = s.Bootstrap([]Peer{{ID: cfg.NodeID, RaftAddr: node.Addr(), HTTPAddr: s.httpAddr}})
	case len(cfg.Peers) > 0:
		err = s.Bootstrap(cfg.Peers)
	case cfg.Join != "":
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.joinLoop()
		}()
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	s.log.Info("manager started", "http", s.httpAddr, "raft", node.Addr(), "data_dir", cfg.DataDir)
	s.warnInsecure(tc)
	return s, nil
}

// StartOn starts a manager on a backend other than its own Raft node: the
// API, the leader's duties and the HTTP listener as Start makes them, the
// replicated state and the leadership as b has them. cfg is checked as
// Start checks it; its Raft settings mean nothing here. Tests about the API
// use it with manager/fakecluster, which applies entries to the FSM at
// once.
func StartOn(cfg Config, b Backend) (*Server, error) {
	s, tc, err := prepare(&cfg)
	if err != nil {
		return nil, err
	}
	s.serve(b, tc)
	s.log.Info("manager started", "http", s.httpAddr, "data_dir", cfg.DataDir)
	return s, nil
}

// prepare checks the configuration, fills in its defaults and opens the
// HTTP listener.
func prepare(cfg *Config) (*Server, *tlsConfigs, error) {
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.BootstrapAdminEmail == "" {
		cfg.BootstrapAdminEmail = "admin@berth.local"
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	log := cfg.Log.With("node", cfg.NodeID)
	s := &Server{cfg: *cfg, log: log, reg: prometheus.NewRegistry()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	owner, err := folderOwner(*cfg)
	if err != nil {
		return nil, nil, err
	}
	tc, err := newTLSConfigs(*cfg)
	if err != nil {
		return nil, nil, err
	}
	s.peerScheme, s.peerClient = tc.peerScheme, tc.peerClient
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen for http on %s: %w", cfg.HTTPAddr, err)
	}
	if tc.httpServer != nil {
		ln = tls.NewListener(ln, tc.httpServer)
	}
	s.listener = ln
	s.httpAddr = cfg.AdvertiseHTTP
	if s.httpAddr == "" {
		s.httpAddr = ln.Addr().String()
	}
	s.folders = folderfs.New(cfg.FolderHosts, folderUsageTTL, 0, cfg.Now, owner...)
	if cfg.AppsAddr != "" {
		aln, err := net.Listen("tcp", cfg.AppsAddr)
		if err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("listen for the apps origin on %s: %w", cfg.AppsAddr, err)
		}
		if tc.httpServer != nil {
			aln = tls.NewListener(aln, tc.httpServer)
		}
		s.appsListener = aln
	}
	return s, tc, nil
}

// serve builds the leader and the API on the backend and starts the HTTP
// server and the leader's watch of the leadership.
func (s *Server) serve(b Backend, tc *tlsConfigs) {
	cfg := s.cfg
	s.backend = b
	s.leader = leader.New(leader.Config{Cluster: b, Node: b, Log: s.log, Metrics: s.reg, Now: cfg.Now, Setup: s.setup,
		HeartbeatTimeout: cfg.HeartbeatTimeout, DisconnectGrace: cfg.DisconnectGrace, KeypairTouchEvery: cfg.KeypairTouchEvery, IdleCheckEvery: cfg.IdleCheckEvery,
		UsageCheckEvery: cfg.UsageCheckEvery, FolderUsageEvery: cfg.FolderUsageEvery, Sched: cfg.schedOptions(),
		Folders: s.folders, SessionRetention: cfg.SessionRetention, CollectEvery: cfg.CollectEvery, MeasureEvery: cfg.MeasureEvery})
	var appTokens httpapi.AppTokens
	if s.appsListener != nil {
		_, port, _ := net.SplitHostPort(s.appsListener.Addr().String())
		s.apps = apps.New(apps.Config{Read: b.Read, Agents: &agentclient.Client{Scheme: tc.agentScheme, Transport: tc.agentTransport},
			Domain: cfg.AppsDomain, Port: port, HTTPS: tc.httpServer != nil, Log: s.log.With("listener", "apps"), Now: cfg.Now,
			CookieTTL: cfg.TokenTTL, AnswerTimeout: cfg.AppsAnswerTimeout})
		appTokens = s.apps
	}
	s.api = httpapi.New(httpapi.Config{Cluster: b, Leader: s.leader, Log: s.log, Metrics: s.reg, Gatherer: s.reg, Now: cfg.Now,
		Rand: cfg.Rand, TokenTTL: cfg.TokenTTL, PasswordCost: cfg.PasswordCost, JoinToken: cfg.JoinToken, AgentToken: cfg.AgentToken, AgentTokenNeedsApproval: cfg.AgentTokenNeedsApproval,
		Console: console.Handler(), Folders: s.folders, NoGroupFolders: cfg.NoGroupFolders, Limits: cfg.HTTPLimits, SpoolDir: cfg.DataDir,
		Secrets: cfg.Secrets, PeerScheme: tc.peerScheme, PeerTransport: tc.peerTransport, AgentScheme: tc.agentScheme, AgentTransport: tc.agentTransport,
		AllowSimulatedAgents: cfg.AllowSimulatedAgents, Apps: appTokens, ActivityEvery: cfg.IdleCheckEvery})
	// ErrorLog: failed TLS handshakes and the like go to the structured log.
	// Bodies and answers get their deadlines per route (httpapi.Limits):
	// a server-wide ReadTimeout would cut the deliberate streams.
	s.http = &http.Server{Handler: s.api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: httpIdleTimeout,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.leader.Run(s.ctx)
	}()
	if s.apps != nil {
		s.appsHTTP = &http.Server{Handler: s.apps, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: httpIdleTimeout,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
		s.wg.Go(func() {
			if err := s.appsHTTP.Serve(s.appsListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("apps origin stopped", "err", err)
			}
		})
		s.log.Info("serving sessions' apps", "apps_addr", s.appsListener.Addr().String(), "apps_domain", cfg.AppsDomain)
	}
}

// AppsAddr is the apps origin's bound address ("" without -apps-addr).
func (s *Server) AppsAddr() string {
	if s.appsListener == nil {
		return ""
	}
	return s.appsListener.Addr().String()
}

// warnInsecure says at start what an attacker on the network could do to
// this manager as configured.
func (s *Server) warnInsecure(tc *tlsConfigs) {
	if s.node.Insecure() {
		s.log.Warn("raft runs over plaintext TCP (-insecure-raft): whoever can reach the Raft port can rewrite the cluster state, superadmins included; use it only on an isolated network, or give every manager -tls-cert, -tls-key and -tls-ca",
			"raft_addr", s.node.Addr())
	}
	if tc.httpServer == nil {
		if host, _, err := net.SplitHostPort(s.listener.Addr().String()); err == nil && !isLoopbackHost(host) {
			s.log.Warn("the API is served over plain HTTP on a non-loopback address: passwords, tokens and keypair signatures cross the network in the clear; give the manager -tls-cert, -tls-key and -tls-ca",
				"http_addr", s.listener.Addr().String())
		}
	}
}

// Bootstrap forms a new cluster of the peers (harmless on a node with state).
func (s *Server) Bootstrap(peers []Peer) error {
	if s.node == nil {
		return errors.New("this manager runs on a backend without Raft: there is nothing to bootstrap")
	}
	s.mu.Lock()
	s.peers = peers
	s.mu.Unlock()
	servers := make([]raft.Server, len(peers))
	for i, p := range peers {
		servers[i] = raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: raft.Voter}
	}
	return s.node.Bootstrap(servers)
}

// Propose commits a command as the leader's own writes do (tests write
// with it what no route writes).
func (s *Server) Propose(ctx context.Context, c fsm.Command) (*fsm.Response, error) {
	return s.backend.Propose(ctx, c)
}

// ProposeSessionCreate commits one session create as the API does,
// batched with the creates that arrive with it.
func (s *Server) ProposeSessionCreate(ctx context.Context, sess state.Session) (*fsm.Response, error) {
	return s.backend.ProposeSessionCreate(ctx, sess)
}

// State is the replicated state as this manager has applied it.
func (s *Server) State() *state.Store { return s.backend.State() }

// AppliedIndex is the index of the last entry this manager applied.
func (s *Server) AppliedIndex() uint64 { return s.backend.AppliedIndex() }

// IsLeader says whether this manager believes it leads.
func (s *Server) IsLeader() bool { return s.backend.IsLeader() }

// Node is this manager's Raft node; nil on another backend (StartOn).
func (s *Server) Node() *raftnode.Node { return s.node }

// Leader runs this manager's duties as leader.
func (s *Server) Leader() *leader.Leader { return s.leader }

// HTTPAddr is the address clients and peers reach this manager's API at.
func (s *Server) HTTPAddr() string { return s.httpAddr }

// URL is the base URL of this manager's API (https with TLS on).
func (s *Server) URL() string { return s.peerScheme + "://" + s.httpAddr }

// RaftAddr is the address of this manager's Raft transport ("" on a
// backend without one).
func (s *Server) RaftAddr() string {
	if s.node == nil {
		return ""
	}
	return s.node.Addr()
}

// ID is this manager's node id.
func (s *Server) ID() string { return s.cfg.NodeID }

// Handler is the HTTP API (tests call it without a socket).
func (s *Server) Handler() http.Handler { return s.api }

// API is the route table owner (the OpenAPI test reads it).
func (s *Server) API() *httpapi.API { return s.api }

// Close stops the manager as a crash would look to its peers: no
// leadership transfer, no goodbye.
func (s *Server) Close() error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Terminals, port-forwards and followed logs first: Shutdown leaves
	// hijacked connections alone, and would wait for the followed logs.
	s.api.Close("the manager " + s.cfg.NodeID + " is shutting down; open it again")
	herr := s.http.Shutdown(ctx)
	if s.appsHTTP != nil {
		herr = errors.Join(herr, s.appsHTTP.Shutdown(ctx))
		s.apps.Close()
	}
	// After the handlers (they may still wait on a batch).
	berr := s.backend.Close()
	s.wg.Wait()
	return errors.Join(herr, berr)
}

// joinLoop asks the cluster at -join to add this manager until it does.
func (s *Server) joinLoop() {
	body, _ := json.Marshal(map[string]string{"id": s.cfg.NodeID, "raft_address": s.node.Addr(), "http_address": s.httpAddr})
	backoff := 500 * time.Millisecond
	for {
		err := s.joinOnce(body)
		if err == nil {
			s.log.Info("joined cluster", "via", s.cfg.Join)
			return
		}
		s.log.Warn("join failed; retrying", "via", s.cfg.Join, "err", err, "retry_in", backoff)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (s *Server) joinOnce(body []byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.joinURL()+"/v1/operator/raft/join", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build join request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(httpapi.JoinTokenHeader, s.cfg.JoinToken)
	resp, err := s.peerClient.Do(req)
	if err != nil {
		return fmt.Errorf("join via %s: %w", s.cfg.Join, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return fmt.Errorf("join via %s: %s: %s", s.cfg.Join, resp.Status, bytes.TrimSpace(msg))
}
