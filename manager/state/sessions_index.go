package state

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/berth-cluster/berth/shared/api"
)

// An index over the sessions that matter to an agent now. Finished sessions
// stay in the table for their history, so an agent accumulates them without
// bound; this index holds only the sessions that occupy slots, so reading
// it costs what runs now, not the whole past. It is derived from the
// records like every index.

// occupyingIndex indexes an occupying session under each of its keys (the
// agents its containers are on); other sessions are not in it at all.
type occupyingIndex struct {
	keys func(*Session) []string
}

func (ix *occupyingIndex) FromObject(raw any) (bool, [][]byte, error) {
	s, ok := raw.(*Session)
	if !ok {
		return false, nil, fmt.Errorf("occupying index: %T is not a session", raw)
	}
	if !s.Status.Occupying() {
		return false, nil, nil
	}
	var out [][]byte
	for _, k := range ix.keys(s) {
		if k != "" {
			out = append(out, append([]byte(k), 0))
		}
	}
	return len(out) > 0, out, nil
}

func (ix *occupyingIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("occupying index takes one key, got %d", len(args))
	}
	k, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("occupying index key must be a string, got %T", args[0])
	}
	return append([]byte(k), 0), nil
}

// OccupyingOnAgent lists the sessions that hold slots on an agent.
func (t *Txn) OccupyingOnAgent(agent string) ([]*Session, error) {
	return list[Session](t, tableSessions, "occupying_agent", agent)
}

// EachPending calls f for every PENDING session in creation order (Raft
// index, then id) until f returns false. The order is sorted here, not kept
// in an index: an index on the creation index (sequential keys) costs every
// create a copy of a node with hundreds of edges, far more than a sort of
// what waits.
func (t *Txn) EachPending(f func(*Session) bool) error {
	ss, err := t.SessionsInStatus(api.SessionPending)
	if err != nil {
		return err
	}
	slices.SortFunc(ss, func(x, y *Session) int {
		return cmp.Or(cmp.Compare(x.CreateIndex, y.CreateIndex), x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	for _, s := range ss {
		if !f(s) {
			return nil
		}
	}
	return nil
}
