// Package fakecluster is a one-manager cluster without Raft, for tests
// about the API and the leader's duties rather than about consensus: every
// proposal is encoded as Raft would carry it and applied at once to a real
// fsm.FSM, one at a time, at the next index, and the manager leads from the
// start. What the tests then exercise is the real log entry, the real
// appliers and the real state; what they do not is replication, elections,
// forwarding and durability, which manager/testcluster's real managers are
// for. A handler call costs an FSM transaction instead of an fsync and a
// Raft round trip, so such tests run in microseconds and in parallel.
package fakecluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/httpapi"
	"github.com/berth-cluster/berth/manager/raftnode"
	"github.com/berth-cluster/berth/manager/state"
)

// term is the one term of the fake's log.
const term = 1

// Cluster is the fake; it implements server.Backend.
type Cluster struct {
	id  string
	fsm *fsm.FSM

	// mu makes applies serial, as Raft's single FSM goroutine does.
	mu     sync.Mutex
	index  uint64
	closed bool

	leaderCh chan bool
}

// New is a cluster of one manager, id, that leads.
func New(id string, log *slog.Logger) *Cluster {
	c := &Cluster{id: id, fsm: fsm.New(log), leaderCh: make(chan bool, 2)}
	c.leaderCh <- true
	return c
}

// Propose applies the command at the next index and returns the FSM's
// response; after Close it is refused as a manager that stopped leading
// refuses it.
func (c *Cluster) Propose(_ context.Context, cmd fsm.Command) (*fsm.Response, error) {
	data, err := fsm.Encode(cmd)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, raftnode.ErrNotLeader
	}
	c.index++
	v := c.fsm.Apply(&raft.Log{Index: c.index, Term: term, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()})
	resp, ok := v.(*fsm.Response)
	if !ok {
		return nil, fmt.Errorf("fsm returned %T for %T", v, cmd)
	}
	return resp, nil
}

// ProposeSessionCreate applies one session create as an entry of its own
// (the real leader batches creates that arrive together; each is applied
// as a lone create would be).
func (c *Cluster) ProposeSessionCreate(ctx context.Context, s state.Session) (*fsm.Response, error) {
	resp, err := c.Propose(ctx, fsm.SessionsCreate{Sessions: []state.Session{s}})
	if err != nil || resp.Err != nil {
		return resp, err
	}
	created, err := fsm.Value[[]fsm.SessionCreated](resp)
	if err != nil {
		return nil, err
	}
	if len(created) != 1 {
		return nil, fmt.Errorf("fsm answered one session create with %d answers", len(created))
	}
	out := &fsm.Response{Index: resp.Index, Err: created[0].Err}
	if created[0].Err == nil {
		out.Value = created[0].Session
	}
	return out, nil
}

// FSM is the state machine the fake applies to.
func (c *Cluster) FSM() *fsm.FSM { return c.fsm }

// Read is a view of the state.
func (c *Cluster) Read() *state.Txn { return c.fsm.State().Read() }

// State is the store the FSM writes.
func (c *Cluster) State() *state.Store { return c.fsm.State() }

// AppliedIndex is the index of the last entry applied.
func (c *Cluster) AppliedIndex() uint64 { return c.fsm.AppliedIndex() }

// WaitIndex waits for the applied index to pass after.
func (c *Cluster) WaitIndex(ctx context.Context, after uint64) (uint64, error) {
	return c.fsm.WaitIndex(ctx, after)
}

// ID is the one manager's id.
func (c *Cluster) ID() string { return c.id }

// Leader is the one manager, which leads.
func (c *Cluster) Leader() string { return c.id }

// IsLeader is true: the one manager leads.
func (c *Cluster) IsLeader() bool { return true }

// VerifyLeader succeeds: there is no other manager to have taken over.
func (c *Cluster) VerifyLeader(context.Context) error { return nil }

// LeaderCh says true once, at the start.
func (c *Cluster) LeaderCh() <-chan bool { return c.leaderCh }

// Barrier returns at once: every entry is applied when it is proposed.
func (c *Cluster) Barrier(context.Context) error { return nil }

// LeadershipTransfer fails: there is no other manager to take over.
func (c *Cluster) LeadershipTransfer() error {
	return errors.New("transfer leadership: a fake cluster has no other manager")
}

// Close refuses proposals from now on.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Raft is the fake's consensus layer as the operator routes see it: one
// voter with no transport.
func (c *Cluster) Raft() httpapi.Raft { return fakeRaft{c} }

type fakeRaft struct{ c *Cluster }

func (r fakeRaft) State() raft.RaftState { return raft.Leader }

func (r fakeRaft) Indexes() (applied, last, t uint64) {
	i := r.c.fsm.AppliedIndex()
	return i, i, term
}

func (r fakeRaft) LastContact() time.Time { return time.Now() }

func (r fakeRaft) Servers() ([]raft.Server, error) {
	return []raft.Server{{ID: raft.ServerID(r.c.id), Suffrage: raft.Voter}}, nil
}

func (r fakeRaft) AddVoter(id, addr string) error {
	return errors.New("add voter: a fake cluster has no Raft transport")
}

func (r fakeRaft) RemoveServer(id string) error {
	return errors.New("remove server: a fake cluster has no Raft transport")
}

// InMemory is true: no manager can reach the fake's Raft, as with -dev.
func (r fakeRaft) InMemory() bool { return true }

// OpenSnapshot writes the state as a Raft snapshot would hold it.
func (r fakeRaft) OpenSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error) {
	r.c.mu.Lock()
	snap, err := r.c.fsm.Snapshot()
	index := r.c.index
	r.c.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	sink := &sink{}
	if err := snap.Persist(sink); err != nil {
		return nil, nil, err
	}
	snap.Release()
	meta := &raft.SnapshotMeta{ID: fmt.Sprintf("%d-%d", term, index), Index: index, Term: term, Size: int64(sink.Len())}
	return meta, io.NopCloser(&sink.Buffer), nil
}

// Restore replaces the state with the snapshot, as a user restore does.
func (r fakeRaft) Restore(rd io.Reader, size int64) error {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.c.fsm.Restore(io.NopCloser(io.LimitReader(rd, size)))
}

// sink is a raft.SnapshotSink in memory.
type sink struct{ bytes.Buffer }

func (s *sink) ID() string    { return "fake" }
func (s *sink) Cancel() error { return nil }
func (s *sink) Close() error  { return nil }
