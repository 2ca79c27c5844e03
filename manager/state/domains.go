package state

import (
	"time"

	"github.com/hashicorp/go-memdb"
)

// Domain is the top of the group hierarchy; every user belongs to one.
type Domain struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	IsActive    bool      `json:"is_active"`
	CreatedAt   time.Time `json:"created_at"`
	Meta
}

func (d *Domain) id() string { return d.Name }

const tableDomains = "domains"

func domainsTable() Table {
	return Table{Name: tableDomains, ID: 1, New: func() any { return new(Domain) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "Name", true, false),
		}}}
}

// Domain returns the named domain or nil.
func (t *Txn) Domain(name string) (*Domain, error) { return first[Domain](t, tableDomains, "id", name) }

// Domains lists every domain by name.
func (t *Txn) Domains() ([]*Domain, error) { return list[Domain](t, tableDomains, "id") }

// PutDomain inserts or replaces a domain at the Raft index.
func (t *Txn) PutDomain(index uint64, d *Domain) error { return t.put(tableDomains, index, d) }
