package server

import (
	"context"
	"fmt"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/httpapi"
	"github.com/berth-cluster/berth/manager/leader"
	"github.com/berth-cluster/berth/manager/raftnode"
	"github.com/berth-cluster/berth/manager/state"
)

// Backend is what a manager runs on: the replicated state and this
// manager's place in the cluster. Start gives a manager its own Raft node;
// tests about the API rather than about Raft start one on a backend that
// applies entries to the FSM at once (StartOn, manager/fakecluster).
type Backend interface {
	httpapi.Cluster
	leader.Node
	// State is the store the FSM writes.
	State() *state.Store
	// Close stops the backend (after the HTTP server and the leader).
	Close() error
}

// raftBackend is a manager's own Raft node and FSM.
type raftBackend struct {
	node    *raftnode.Node
	fsm     *fsm.FSM
	creates *sessionCreates // batcher.go
}

var _ Backend = (*raftBackend)(nil)

// Propose implements httpapi.Cluster and leader.Cluster.
func (b *raftBackend) Propose(ctx context.Context, c fsm.Command) (*fsm.Response, error) {
	data, err := fsm.Encode(c)
	if err != nil {
		return nil, err
	}
	if !b.node.IsLeader() {
		return nil, raftnode.ErrNotLeader
	}
	v, err := b.node.Apply(ctx, data)
	if err != nil {
		return nil, err
	}
	resp, ok := v.(*fsm.Response)
	if !ok {
		return nil, fmt.Errorf("fsm returned %T for %T", v, c)
	}
	return resp, nil
}

// ProposeSessionCreate implements httpapi.Cluster (batcher.go).
func (b *raftBackend) ProposeSessionCreate(ctx context.Context, s state.Session) (*fsm.Response, error) {
	if !b.node.IsLeader() {
		return nil, raftnode.ErrNotLeader
	}
	return b.creates.propose(ctx, s)
}

func (b *raftBackend) Read() *state.Txn          { return b.fsm.State().Read() }
func (b *raftBackend) State() *state.Store       { return b.fsm.State() }
func (b *raftBackend) AppliedIndex() uint64      { return b.fsm.AppliedIndex() }
func (b *raftBackend) ID() string                { return b.node.ID() }
func (b *raftBackend) IsLeader() bool            { return b.node.IsLeader() }
func (b *raftBackend) Raft() httpapi.Raft        { return b.node }
func (b *raftBackend) LeaderCh() <-chan bool     { return b.node.LeaderCh() }
func (b *raftBackend) LeadershipTransfer() error { return b.node.LeadershipTransfer() }

func (b *raftBackend) WaitIndex(ctx context.Context, after uint64) (uint64, error) {
	return b.fsm.WaitIndex(ctx, after)
}

func (b *raftBackend) Leader() string {
	id, _ := b.node.Leader()
	return id
}

func (b *raftBackend) VerifyLeader(ctx context.Context) error { return b.node.VerifyLeader(ctx) }
func (b *raftBackend) Barrier(ctx context.Context) error      { return b.node.Barrier(ctx) }

// Close stops the session batcher (its callers, the handlers, are done by
// then), then Raft.
func (b *raftBackend) Close() error {
	b.creates.b.Close()
	return b.node.Close()
}
