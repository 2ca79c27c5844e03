package state

import (
	"time"

	"github.com/hashicorp/go-memdb"
)

// Group belongs to one domain; its members are users of that domain.
type Group struct {
	Domain      string    `json:"domain"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	IsActive    bool      `json:"is_active"`
	CreatedAt   time.Time `json:"created_at"`
	Meta
}

func (g *Group) id() string { return g.Domain + "\x00" + g.Name }

const tableGroups = "groups"

func groupsTable() Table {
	return Table{Name: tableGroups, ID: 2, New: func() any { return new(Group) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "Domain"}, &memdb.StringFieldIndex{Field: "Name"},
			}}},
			"domain": stringIndex("domain", "Domain", false, false),
		}}}
}

// Group returns the group of the domain or nil.
func (t *Txn) Group(domain, name string) (*Group, error) {
	return first[Group](t, tableGroups, "id", domain, name)
}

// Groups lists the groups of a domain by name.
func (t *Txn) Groups(domain string) ([]*Group, error) {
	return list[Group](t, tableGroups, "domain", domain)
}

// PutGroup inserts or replaces a group at the Raft index.
func (t *Txn) PutGroup(index uint64, g *Group) error { return t.put(tableGroups, index, g) }
