package fsm

import (
	"errors"
	"fmt"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
)

// SessionsCreate records many new PENDING sessions in one entry. The leader
// gathers the creates that arrive while its previous proposal is in flight
// (manager/batch), so one Raft round trip and one FSM transaction admit
// them all instead of one each. Each session is decided on its own, in
// order, exactly as a SessionCreate of it would be: one refused session
// does not refuse the others, and a later one sees the earlier ones (two
// with one id: the second is refused). SessionCreate stays for the logs
// that hold it.
type SessionsCreate struct {
	Sessions []state.Session `json:"sessions"`
}

// MsgType implements Command.
func (SessionsCreate) MsgType() MsgType { return MsgSessionsCreate }

// SessionCreated is the answer to one session of a SessionsCreate: the
// session as recorded, or the rule it broke (nothing was written for it).
// The applier returns one per session, in the entry's order, so each
// waiting request gets its own answer.
type SessionCreated struct {
	Session *state.Session
	Err     error
}

func applySessionsCreate(tx *state.Txn, index uint64, c *SessionsCreate) (any, error) {
	out := make([]SessionCreated, len(c.Sessions))
	for i := range c.Sessions {
		v, err := applySessionCreate(tx, index, &SessionCreate{Session: c.Sessions[i]})
		var rule *apierr.Error
		switch {
		case errors.As(err, &rule):
			// Every rule is checked before the session is written, so a
			// refusal leaves nothing behind to undo.
			out[i].Err = err
		case err != nil:
			// Not a rule but the store failing: the transaction may hold
			// part of this session, so the whole entry is refused (on
			// every node alike) rather than committed half-written.
			return nil, fmt.Errorf("create session %d of %d (%s): %w", i+1, len(c.Sessions), c.Sessions[i].ID, err)
		default:
			out[i].Session = v.(*state.Session)
		}
	}
	return out, nil
}
