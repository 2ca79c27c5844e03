package fsm

import (
	"github.com/berth-cluster/berth/manager/state"
)

// MemberPut records a manager's addresses (on join, or when a leader takes
// office and finds itself missing).
type MemberPut struct {
	Member state.Member `json:"member"`
}

// MsgType implements Command.
func (MemberPut) MsgType() MsgType { return MsgMemberPut }

func applyMemberPut(tx *state.Txn, index uint64, c *MemberPut) (any, error) {
	m := c.Member
	old, err := tx.Member(m.ID)
	if err != nil {
		return nil, err
	}
	if old != nil {
		m.Meta = old.Meta
	}
	return nil, tx.PutMember(index, &m)
}

// MemberDelete forgets a manager removed from the Raft configuration.
type MemberDelete struct {
	ID string `json:"id"`
}

// MsgType implements Command.
func (MemberDelete) MsgType() MsgType { return MsgMemberDelete }

func applyMemberDelete(tx *state.Txn, _ uint64, c *MemberDelete) (any, error) {
	m, err := tx.Member(c.ID)
	if err != nil || m == nil {
		return nil, err
	}
	return nil, tx.DeleteMember(m)
}
