package state

import (
	"cmp"
	"slices"
	"strings"

	"github.com/berth-cluster/berth/shared/api"
)

// OccupyingOnAgent lists the sessions that hold slots on an agent, in id
// order. Finished sessions stay in the table for their history, so an
// agent accumulates them without bound; this index (trees.go) holds only
// the sessions that occupy slots, so reading it costs what runs now, not
// the whole past.
func (t *Txn) OccupyingOnAgent(agent string) ([]*Session, error) {
	var out []*Session
	ascend(t, t.tr.sessionsOnAgent, true, agentSession{agent, &Session{}}, func(e agentSession) bool {
		if e.agent != agent {
			return false
		}
		out = append(out, e.s)
		return true
	})
	return out, nil
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
