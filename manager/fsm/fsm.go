// Package fsm applies Raft log entries to the replicated state. An entry is
// one type byte and a JSON body; each type has an applier registered in
// types.go. Appliers are deterministic: everything random or time-dependent
// (ids, timestamps, secrets, password hashes) is decided by the handler before
// the entry is proposed, and every rule that depends on state (uniqueness,
// "in use") is decided here, serially, so no race or failover can break it.
package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/berth-cluster/berth/manager/state"
)

// Command is a log entry body.
type Command interface{ MsgType() MsgType }

// Encode makes the log entry bytes of a command.
func Encode(c Command) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", c, err)
	}
	return append([]byte{byte(c.MsgType())}, body...), nil
}

// Response is what Apply returns for every entry: the index it was applied
// at, the applier's result, or the rule it broke (nothing was written then).
type Response struct {
	Index uint64
	Value any
	Err   error
}

// Value is an applied command's value as the type its applier returns (for
// AgentPut, *state.Agent). A value of another type is a bug of the caller or
// of the applier, reported as an error instead of a panic.
func Value[T any](r *Response) (T, error) {
	v, ok := r.Value.(T)
	if !ok {
		var want T
		return want, fmt.Errorf("the entry applied at index %d answered %T, not %T", r.Index, r.Value, want)
	}
	return v, nil
}

type applier func(tx *state.Txn, index uint64, body []byte) (any, error)

// handle adapts a typed applier to the registry.
func handle[C any](f func(tx *state.Txn, index uint64, c *C) (any, error)) applier {
	return func(tx *state.Txn, index uint64, body []byte) (any, error) {
		c := new(C)
		if err := json.Unmarshal(body, c); err != nil {
			return nil, fmt.Errorf("decode %T: %w", *c, err)
		}
		if v, ok := any(c).(versioned); ok {
			if got, known := v.bodyVersion(); got > known {
				return nil, &tooNew{what: fmt.Sprintf("%T version %d (this manager knows up to %d)", *c, got, known)}
			}
		}
		return f(tx, index, c)
	}
}

// versioned is an entry body that says which version of its shape it is
// (types.go).
type versioned interface {
	// bodyVersion is the version the body says and the newest this
	// manager knows.
	bodyVersion() (got, known int)
}

// tooNew is an entry a newer manager wrote in a shape this one does not
// know.
type tooNew struct{ what string }

func (e *tooNew) Error() string { return e.what }

// FSM is the raft.FSM of the manager.
type FSM struct {
	store    *state.Store
	appliers map[MsgType]applier
	log      *slog.Logger
	applied  atomic.Uint64
	watch    indexWatch
}

// New returns an FSM over an empty store.
func New(log *slog.Logger) *FSM {
	st := state.New()
	st.SetLog(log)
	return &FSM{store: st, appliers: appliers(), log: log}
}

// State is the store the FSM writes; readers use its Read transactions.
func (f *FSM) State() *state.Store { return f.store }

// AppliedIndex is the index of the last entry applied.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	defer f.advance(l.Index)
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.ApplyEntry(l.Index, l.Data)
}

// ApplyEntry applies one encoded entry at index; tests use it to replay logs
// without Raft.
func (f *FSM) ApplyEntry(index uint64, data []byte) *Response {
	if len(data) == 0 {
		return &Response{Index: index, Err: fmt.Errorf("empty log entry at index %d", index)}
	}
	t := MsgType(data[0])
	ap, ok := f.appliers[t]
	if !ok {
		if t&IgnoreUnknown != 0 {
			f.log.Warn("skipping unknown log entry type", "type", uint8(t), "index", index)
			return &Response{Index: index}
		}
		f.stop(index, t, fmt.Sprintf("unknown log entry type %d", t))
	}
	tx := f.store.Write()
	defer tx.Abort()
	v, err := ap(tx, index, data[1:])
	if err != nil {
		if tn := (*tooNew)(nil); errors.As(err, &tn) {
			f.stop(index, t, tn.what)
		}
		return &Response{Index: index, Err: err}
	}
	tx.Commit()
	return &Response{Index: index, Value: v}
}

// stop halts the node at an entry it cannot understand. Applying it its own
// way, or skipping it, would make this node's state differ from its
// peers'; stopping is the only safe choice. The entry stays in the log, so
// the same manager, upgraded, applies it on its next start. hashicorp/raft
// does not recover a panicking FSM: the process ends, after a log line that
// says what happened and what to do.
func (f *FSM) stop(index uint64, t MsgType, what string) {
	f.log.Error("stopping: this manager cannot apply a log entry; upgrade it to a release that knows the entry and start it again",
		"index", index, "type", uint8(t), "entry", what)
	panic(fmt.Sprintf("fsm: cannot apply log entry %d (%s): upgrade this manager", index, what))
}

// Snapshot implements raft.FSM; the copy is O(1) (memdb is immutable).
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{store: f.store.Snapshot()}, nil
}

// Restore implements raft.FSM: the store is replaced by the snapshot's records.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	fresh, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.store.Swap(fresh)
	// Blocking queries look again: the state changed even if the applied
	// index this FSM knows did not.
	f.watch.notify()
	return nil
}
