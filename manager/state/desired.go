package state

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// desiredMark is the Raft index at which something an agent's desired state
// is made of last changed (Key: the agent's id), or something every agent's
// is made of (Key: desiredEveryone). An agent's blocking desired-state query
// waits on its own mark and the everyone mark instead of on the applied
// index, so an entry wakes only the agents it concerns: a plan the agents
// it places on, a report the agent that sent it, a create (PENDING, on no
// agent) none. Without this every entry woke every waiting agent, and each
// rebuilt and sent a desired state that had not changed for it.
//
// The marks are derived like usage: moved by the writes in the same
// transaction (put, PutSession), rebuilt from the records' modify indexes
// when a snapshot is restored, and not themselves in snapshots. A deletion
// moves no mark (nothing deleted today is part of a desired state: a folder
// mounted by a live session cannot be deleted); the query's wait bounds
// what that could delay.
type desiredMark struct {
	Key   string `json:"key"`
	Index uint64 `json:"index"`
}

const (
	tableDesired = "desired_marks"
	// desiredEveryone cannot be an agent id (those are "agent-…").
	desiredEveryone = "*"
)

// desiredForEveryone are the tables an agent's desired state reads beyond
// its own record and the sessions placed on it (leader/desired.go and the
// desired route): folders, keypairs and policies for a folder mount's size
// limit, registries for pull credentials. A write to one of them moves
// every agent's mark. A table read there in future must be added here.
var desiredForEveryone = map[string]bool{tableFolders: true, tableKeypairs: true, tablePolicies: true, tableRegistries: true}

// desiredSchema is not among Tables(): being derived, it is rebuilt while
// a snapshot is restored (markRestored).
func desiredSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableDesired, Indexes: map[string]*memdb.IndexSchema{
		"id": stringIndex("id", "Key", true, false),
	}}
}

// markDesired moves key's mark to index; marks never go back.
func (t *Txn) markDesired(key string, index uint64) error {
	old, err := first[desiredMark](t, tableDesired, "id", key)
	if err != nil {
		return err
	}
	if old != nil && old.Index >= index {
		return nil
	}
	if err := t.tx.Insert(tableDesired, &desiredMark{Key: key, Index: index}); err != nil {
		return fmt.Errorf("insert into %s: %w", tableDesired, err)
	}
	return nil
}

// markWrite moves the marks a write of obj into table concerns: an agent's
// record its own, the tables of desiredForEveryone everyone's. Sessions
// are PutSession's (markSession), which knows the agents of the version
// replaced too.
func (t *Txn) markWrite(table string, index uint64, obj any) error {
	switch {
	case table == tableAgents:
		return t.markDesired(obj.(*Agent).ID, index)
	case desiredForEveryone[table]:
		return t.markDesired(desiredEveryone, index)
	}
	return nil
}

// markSession moves the marks of the agents a session's old and new
// versions are placed on.
func (t *Txn) markSession(index uint64, old, s *Session) error {
	for _, v := range []*Session{old, s} {
		if v == nil {
			continue
		}
		for _, c := range v.Containers {
			if c.Agent == "" {
				continue
			}
			if err := t.markDesired(c.Agent, index); err != nil {
				return err
			}
		}
	}
	return nil
}

// markRestored rebuilds the marks an object restored from a snapshot
// stands for, from its modify index.
func (t *Txn) markRestored(table string, obj any) error {
	if s, ok := obj.(*Session); ok && table == tableSessions {
		return t.markSession(s.ModifyIndex, nil, s)
	}
	if v, ok := obj.(versioned); ok {
		return t.markWrite(table, v.meta().ModifyIndex, obj)
	}
	return nil
}

// DesiredIndex is the Raft index at which the agent's desired state last
// changed (as far as this manager has applied), and a Watch that fires when
// it changes again or the state is replaced by a restore. Every manager
// derives the same marks from the same log.
func (t *Txn) DesiredIndex(agent string) (uint64, Watch, error) {
	w := Watch{t.swapped}
	var index uint64
	for _, key := range []string{agent, desiredEveryone} {
		ch, raw, err := t.tx.FirstWatch(tableDesired, "id", key)
		if err != nil {
			return 0, Watch{}, fmt.Errorf("read the desired-state mark of %s: %w", key, err)
		}
		w = append(w, ch)
		if m, ok := raw.(*desiredMark); ok {
			index = max(index, m.Index)
		}
	}
	return index, w, nil
}

// SessionWatch is the session (nil: none has that id) and a Watch that
// fires when it is written again or the state is replaced by a restore.
func (t *Txn) SessionWatch(id string) (*Session, Watch, error) {
	ch, raw, err := t.tx.FirstWatch(tableSessions, "id", id)
	if err != nil {
		return nil, Watch{}, fmt.Errorf("read session %s: %w", id, err)
	}
	s, _ := raw.(*Session)
	return s, Watch{t.swapped, ch}, nil
}

// Watch is what a read saw, as channels that close when it changes: a
// blocking query waits on it instead of on every applied entry.
type Watch []<-chan struct{}

// Wait returns nil once what was read changed, or ctx's error when ctx
// ends first.
func (w Watch) Wait(ctx context.Context) error {
	ws := memdb.NewWatchSet()
	for _, ch := range w {
		if ch != nil {
			ws.Add(ch)
		}
	}
	return ws.WatchCtx(ctx)
}
