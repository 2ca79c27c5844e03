package state

import (
	"context"
	"fmt"
	"sync"

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
// The marks are moved by the writes in the same transaction (put,
// PutSession). They are also in snapshots (table 72): a record a mark was
// moved for may be deleted since (the leader collects ended sessions after
// the retention, issue 22), and a restore must give the marks the log gave.
// A restore takes the snapshot's marks and the records' modify indexes,
// the larger of each (a snapshot of an older release has no marks). A
// deletion moves no mark (nothing deleted is part of a desired state: a
// folder mounted by a live session cannot be deleted, a collected session
// has ended); the query's wait bounds what that could delay.
type desiredMark struct {
	Key   string `json:"key"`
	Index uint64 `json:"index"`
}

func (m *desiredMark) id() string { return m.Key }

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

func desiredTable() Table {
	return Table{Name: tableDesired, ID: 72, New: func() any { return new(desiredMark) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "Key", true, false),
		}}}
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
// stands for, from its modify index, or takes a mark the snapshot holds.
func (t *Txn) markRestored(table string, obj any) error {
	if m, ok := obj.(*desiredMark); ok {
		return t.markDesired(m.Key, m.Index)
	}
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
	w := Watch{chans: []<-chan struct{}{t.swapped}}
	var index uint64
	for _, key := range []string{agent, desiredEveryone} {
		ch, raw, err := t.tx.FirstWatch(tableDesired, "id", key)
		if err != nil {
			return 0, Watch{}, fmt.Errorf("read the desired-state mark of %s: %w", key, err)
		}
		w.chans = append(w.chans, ch)
		if m, ok := raw.(*desiredMark); ok {
			index = max(index, m.Index)
		}
	}
	return index, w, nil
}

// SessionWatch is the session (nil: none has that id) and a Watch that
// fires when it is written again or the state is replaced by a restore.
// The watch costs nothing until someone waits on it (Wait registers it),
// and nothing for the sessions nobody waits on: sessions are kept outside
// go-memdb (trees.go), which gave every record its own watch channels.
func (t *Txn) SessionWatch(id string) (*Session, Watch, error) {
	s := t.tr.session(id)
	return s, Watch{chans: []<-chan struct{}{t.swapped}, session: &sessionWatch{st: t.st, id: id, seen: s}}, nil
}

// Watch is what a read saw, as channels that close when it changes: a
// blocking query waits on it instead of on every applied entry.
type Watch struct {
	chans   []<-chan struct{}
	session *sessionWatch
}

// Wait returns nil once what was read changed, or ctx's error when ctx
// ends first.
func (w Watch) Wait(ctx context.Context) error {
	ws := memdb.NewWatchSet()
	for _, ch := range w.chans {
		if ch != nil {
			ws.Add(ch)
		}
	}
	if w.session != nil {
		ch, release := w.session.register()
		defer release()
		ws.Add(ch)
	}
	return ws.WatchCtx(ctx)
}

// sessionWatch is a read of one session, to be waited on.
type sessionWatch struct {
	st   *Store
	id   string
	seen *Session // the version read; nil: there was none
}

// sessionWatches are the channels of the sessions someone waits on, made
// when the first waiter comes and closed by the commit that changes the
// session (Commit, through Store.publish), or by a restore. Derived and
// local: nothing of it is replicated or in a snapshot.
type sessionWatches struct {
	mu sync.Mutex
	m  map[string]*sessionWaiters
}

type sessionWaiters struct {
	ch chan struct{}
	n  int
}

// maxTracked bounds the sessions a write remembers changing for their
// watches; a write that changes more (a restore, a large collection)
// wakes every waiter, who read again and wait again if theirs did not
// change.
const maxTracked = 1024

// touched notes that the write changed a record of table.
func (t *Txn) touched(table string, obj any) {
	if table != tableSessions || t.changedMany {
		return
	}
	if len(t.changed) == maxTracked {
		t.changed, t.changedMany = nil, true
		return
	}
	t.changed = append(t.changed, obj.(*Session).ID)
}

// publish makes v the current version and fires the watches of the
// sessions t changed. Under the watches' lock, so that a waiter either
// sees v (and that its session changed) or is registered before v is.
func (s *Store) publish(v *version, t *Txn) {
	w := &s.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	s.cur.Store(v)
	if len(w.m) == 0 {
		return
	}
	if t.changedMany {
		w.fireAllLocked()
		return
	}
	for _, id := range t.changed {
		if x := w.m[id]; x != nil {
			close(x.ch)
			delete(w.m, id)
		}
	}
}

func (w *sessionWatches) fireAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fireAllLocked()
}

func (w *sessionWatches) fireAllLocked() {
	for id, x := range w.m {
		close(x.ch)
		delete(w.m, id)
	}
}

// register returns a channel that closes when the session changes from
// the version seen (at once when it already has), and what to call when
// the wait is over, so that a session nobody waits on any more keeps no
// channel.
func (sw *sessionWatch) register() (<-chan struct{}, func()) {
	w := &sw.st.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	if sw.st.cur.Load().tr.session(sw.id) != sw.seen {
		ch := make(chan struct{})
		close(ch)
		return ch, func() {}
	}
	x := w.m[sw.id]
	if x == nil {
		if w.m == nil {
			w.m = map[string]*sessionWaiters{}
		}
		x = &sessionWaiters{ch: make(chan struct{})}
		w.m[sw.id] = x
	}
	x.n++
	return x.ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if x.n--; x.n == 0 && w.m[sw.id] == x {
			delete(w.m, sw.id)
		}
	}
}
