// Package raftnode runs one manager's Raft participant: the BoltDB log and
// stable store, the file snapshot store, the transport (mutual TLS on its
// own port; in memory for a one-node dev cluster; plaintext TCP only when
// asked for by name), and the membership changes operators ask for. It
// knows nothing of what the log entries mean; that is the FSM's job.
package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Config describes one Raft node. Zero durations take hashicorp/raft's
// defaults, which suit a LAN; tests shorten them.
type Config struct {
	ID        string
	BindAddr  string // host:port; port 0 picks a free one
	Advertise string // address peers dial; default: the bound address
	DataDir   string
	FSM       raft.FSM
	Logger    *slog.Logger
	// RaftLog receives hashicorp/raft's own log lines (default: stderr).
	RaftLog      io.Writer
	RaftLogLevel string // hclog level name; default "info"
	Metrics      prometheus.Registerer
	// ServerTLS and ClientTLS, when set, carry the Raft traffic over mutual
	// TLS: ServerTLS must require client certificates, ClientTLS presents
	// this node's certificate and trusts the cluster's CA.
	ServerTLS, ClientTLS *tls.Config
	// InMemory keeps the transport inside the process: a one-node cluster
	// (-dev) needs no peers, so it opens no port that could be attacked.
	// BindAddr and Advertise are ignored; no other node can ever join.
	InMemory bool
	// Plaintext allows a TCP transport without TLS. Raft has no
	// authentication of its own: whoever reaches the port can append
	// entries with a higher term, so it must be asked for by name.
	Plaintext bool

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
}

// Node is a running Raft participant.
type Node struct {
	raft     *raft.Raft
	trans    raft.Transport
	inmem    bool
	insecure bool
	store    *raftboltdb.BoltStore
	snaps    raft.SnapshotStore
	id       string
	log      *slog.Logger
	leaderCh chan bool
	metrics  *metrics
	observer *raft.Observer
	stopObs  chan struct{}
}

// ErrNotLeader is returned by writes on a node that is not the leader: the
// entry was not appended, so the write may safely be sent again.
var ErrNotLeader = errors.New("this manager is not the Raft leader")

// ErrOutcomeUnknown is returned when leadership was lost, or the wait ran
// out, after the entry was appended: it may still commit. Sending the write
// again could apply it twice, so callers must not retry it blindly.
var ErrOutcomeUnknown = errors.New("leadership changed or the wait ran out while the write was being committed; it may or may not have been applied")

// Open starts the node. It does not bootstrap; call Bootstrap on a new
// cluster or let the node be added by the leader.
func Open(cfg Config) (*Node, error) {
	if cfg.ID == "" {
		return nil, errors.New("raft node id is required")
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir %s: %w", dir, err)
	}
	rlog := cfg.RaftLog
	if rlog == nil {
		rlog = os.Stderr
	}
	level := cfg.RaftLogLevel
	if level == "" {
		level = "info"
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: rlog, Level: hclog.LevelFromString(level), JSONFormat: true})

	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
	}
	var adv net.Addr
	if cfg.Advertise != "" {
		if adv, err = net.ResolveTCPAddr("tcp", cfg.Advertise); err != nil {
			store.Close()
			return nil, fmt.Errorf("resolve raft advertise address %s: %w", cfg.Advertise, err)
		}
	}
	trans, err := openTransport(cfg, adv, hl)
	if err != nil {
		store.Close()
		return nil, err
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hl
	setIf(&rc.HeartbeatTimeout, cfg.HeartbeatTimeout)
	setIf(&rc.ElectionTimeout, cfg.ElectionTimeout)
	setIf(&rc.LeaderLeaseTimeout, cfg.LeaderLeaseTimeout)
	setIf(&rc.SnapshotThreshold, cfg.SnapshotThreshold)
	setIf(&rc.SnapshotInterval, cfg.SnapshotInterval)
	setIf(&rc.TrailingLogs, cfg.TrailingLogs)
	leaderCh := make(chan bool, 16)
	rc.NotifyCh = leaderCh

	r, err := raft.NewRaft(rc, cfg.FSM, store, store, snaps, trans)
	if err != nil {
		closeTransport(trans)
		store.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	n := &Node{raft: r, trans: trans, inmem: cfg.InMemory, insecure: !cfg.InMemory && cfg.ServerTLS == nil, store: store, snaps: snaps, id: cfg.ID, log: log, leaderCh: leaderCh, stopObs: make(chan struct{})}
	n.metrics = newMetrics(cfg.Metrics, n)
	n.watchLeaderChanges()
	return n, nil
}

// InMemoryAddr is the Raft address of a node with an in-memory transport.
// It is fixed, not random, so the configuration stored in the Raft log
// stays true across restarts of a dev manager.
const InMemoryAddr = "in-memory"

// openTransport picks the transport: in memory, mutual TLS, or plaintext
// TCP only when cfg says Plaintext.
func openTransport(cfg Config, adv net.Addr, hl hclog.Logger) (raft.Transport, error) {
	switch {
	case cfg.InMemory:
		_, t := raft.NewInmemTransport(InMemoryAddr)
		return t, nil
	case cfg.ServerTLS != nil:
		stream, err := newTLSStream(cfg.BindAddr, adv, cfg.ServerTLS, cfg.ClientTLS)
		if err != nil {
			return nil, err
		}
		return raft.NewNetworkTransportWithLogger(stream, 3, 10*time.Second, hl), nil
	case cfg.Plaintext:
		t, err := raft.NewTCPTransportWithLogger(cfg.BindAddr, adv, 3, 10*time.Second, hl)
		if err != nil {
			return nil, fmt.Errorf("listen for raft on %s: %w", cfg.BindAddr, err)
		}
		return t, nil
	}
	return nil, errors.New("raft needs mutual TLS on its port (or, knowingly, plaintext): no TLS configuration was given")
}

func closeTransport(t raft.Transport) error {
	if c, ok := t.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

func setIf[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// ID is this node's Raft server id.
func (n *Node) ID() string { return n.id }

// Addr is the address peers reach this node's transport at.
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// InMemory reports whether this node's transport is in memory: no other
// node can reach it, so none can join.
func (n *Node) InMemory() bool { return n.inmem }

// Insecure reports whether this node speaks Raft over plaintext TCP.
func (n *Node) Insecure() bool { return n.insecure }

// LeaderCh delivers true when this node becomes leader and false when it
// stops being leader. Exactly one goroutine must drain it.
func (n *Node) LeaderCh() <-chan bool { return n.leaderCh }

// Bootstrap forms a new cluster from a static server list. It is a no-op on a
// node that already has Raft state, so every server of a new cluster may call
// it with the same list, and restarts are harmless.
func (n *Node) Bootstrap(servers []raft.Server) error {
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft cluster: %w", err)
	}
	return nil
}

// Apply proposes an entry and waits until it is applied on this (leader)
// node, returning what the FSM returned.
func (n *Node) Apply(ctx context.Context, data []byte) (any, error) {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	start := time.Now()
	f := n.raft.Apply(data, timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			switch {
			case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress),
				errors.Is(err, raft.ErrEnqueueTimeout):
				return nil, fmt.Errorf("%w: %v", ErrNotLeader, err)
			case errors.Is(err, raft.ErrLeadershipLost):
				return nil, fmt.Errorf("%w: %v", ErrOutcomeUnknown, err)
			}
			return nil, fmt.Errorf("raft apply: %w", err)
		}
		n.metrics.apply.Observe(time.Since(start).Seconds())
		return f.Response(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("raft apply: %w (%w)", ErrOutcomeUnknown, ctx.Err())
	}
}

// IsLeader reports whether this node believes it is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// State is this node's Raft role.
func (n *Node) State() raft.RaftState { return n.raft.State() }

// Leader returns the id and address of the leader this node knows, or "".
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// VerifyLeader confirms with a quorum that this node is still the leader,
// so a read served after it is not stale.
func (n *Node) VerifyLeader(ctx context.Context) error {
	f := n.raft.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("verify leadership: %w", ctx.Err())
	}
}

// LastContact is when this node last heard from the leader (now, on the leader).
func (n *Node) LastContact() time.Time {
	if n.IsLeader() {
		return time.Now()
	}
	return n.raft.LastContact()
}

// Indexes returns the applied index, the last log index and the current term.
func (n *Node) Indexes() (applied, last, term uint64) {
	return n.raft.AppliedIndex(), n.raft.LastIndex(), n.raft.CurrentTerm()
}

// Servers returns the current Raft configuration.
func (n *Node) Servers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	return f.Configuration().Servers, nil
}

// AddVoter adds a server to the cluster (leader only).
func (n *Node) AddVoter(id, addr string) error {
	if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 30*time.Second).Error(); err != nil {
		return fmt.Errorf("add voter %s at %s: %w", id, addr, err)
	}
	return nil
}

// RemoveServer removes a server from the cluster (leader only).
func (n *Node) RemoveServer(id string) error {
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 30*time.Second).Error(); err != nil {
		return fmt.Errorf("remove server %s: %w", id, err)
	}
	return nil
}

// Snapshot takes a snapshot now and compacts the log behind it.
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("take snapshot: %w", err)
	}
	return nil
}

// OpenSnapshot takes a snapshot of the applied state and opens it; when
// nothing was applied since the newest snapshot, that one is opened. The
// caller closes the reader. The bytes are the FSM's own snapshot format,
// which Restore reads back.
func (n *Node) OpenSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error) {
	f := n.raft.Snapshot()
	err := f.Error()
	if err == nil {
		meta, rc, err := f.Open()
		if err != nil {
			return nil, nil, fmt.Errorf("open the snapshot just taken: %w", err)
		}
		return meta, rc, nil
	}
	if !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil, nil, fmt.Errorf("take snapshot: %w", err)
	}
	list, err := n.snaps.List()
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) == 0 {
		return nil, nil, errors.New("no snapshot to open: nothing has been applied yet")
	}
	meta, rc, err := n.snaps.Open(list[0].ID)
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	return meta, rc, nil
}

// Restore replaces the whole replicated state with a snapshot of size bytes
// read from r (leader only): the leader installs it and the followers take
// it by snapshot install. It is for disaster recovery; every write since the
// snapshot was taken is lost.
func (n *Node) Restore(r io.Reader, size int64) error {
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size}
	if err := n.raft.Restore(meta, r, 0); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return fmt.Errorf("restore snapshot: %w", err)
	}
	return nil
}

// Close stops the node: leadership is not handed over, peers notice by
// missing heartbeats, exactly as if the process died.
func (n *Node) Close() error {
	close(n.stopObs)
	n.raft.DeregisterObserver(n.observer)
	errs := []error{n.raft.Shutdown().Error(), closeTransport(n.trans), n.store.Close()}
	n.metrics.unregister()
	return errors.Join(errs...)
}

// Barrier waits until every entry committed before it is applied here; a new
// leader calls it before reading state to decide anything.
func (n *Node) Barrier(ctx context.Context) error {
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := n.raft.Barrier(timeout).Error(); err != nil {
		return fmt.Errorf("raft barrier: %w", err)
	}
	return nil
}

// LeadershipTransfer hands leadership to the most up-to-date other voter
// and returns once it has, or once hashicorp/raft gave up (no other voter,
// none caught up within an election timeout).
func (n *Node) LeadershipTransfer() error {
	if err := n.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	return nil
}

// Stats is hashicorp/raft's own view of the node (indexes, snapshot, peers).
func (n *Node) Stats() map[string]string { return n.raft.Stats() }
