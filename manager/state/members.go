package state

import (
	"github.com/hashicorp/go-memdb"
)

// Member maps a manager's Raft id to the HTTP address followers forward to.
// Raft's own configuration knows only Raft addresses.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Meta
}

func (m *Member) id() string { return m.ID }

const tableMembers = "members"

func membersTable() Table {
	return Table{Name: tableMembers, ID: 7, New: func() any { return new(Member) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "ID", true, false),
		}}}
}

// Member returns the member with the id or nil.
func (t *Txn) Member(id string) (*Member, error) { return first[Member](t, tableMembers, "id", id) }

// Members lists every known manager.
func (t *Txn) Members() ([]*Member, error) { return list[Member](t, tableMembers, "id") }

// PutMember inserts or replaces a member at the Raft index.
func (t *Txn) PutMember(index uint64, m *Member) error { return t.put(tableMembers, index, m) }

// DeleteMember removes a member.
func (t *Txn) DeleteMember(m *Member) error { return t.remove(tableMembers, m) }
