package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// Table describes one table for snapshots: ID is its stable record type in a
// snapshot stream and is never reused; New makes an empty object to decode into.
// schema is its go-memdb schema; nil for the tables kept in B-trees
// (trees.go).
type Table struct {
	Name   string
	ID     byte
	New    func() any
	schema *memdb.TableSchema
}

type ider interface{ id() string }

func idOf(obj any) string { return obj.(ider).id() }

// Tables lists every table in snapshot order.
func Tables() []Table {
	return []Table{
		domainsTable(),
		groupsTable(),
		resourcePoliciesTable(),
		usersTable(),
		keypairsTable(),
		tokensTable(),
		membersTable(),
		settingsTable(),
		agentsTable(),
		agentTokensTable(),
		sessionsTable(),
		foldersTable(),
		invitationsTable(),
		registriesTable(),
		usageDaysTable(),
		collectedTable(),
		desiredTable(),
	}
}

func schema() *memdb.DBSchema {
	s := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	seen := map[byte]string{}
	for _, t := range Tables() {
		if other, dup := seen[t.ID]; dup {
			panic(fmt.Sprintf("state: tables %s and %s share snapshot id %d", other, t.Name, t.ID))
		}
		seen[t.ID] = t.Name
		if t.schema == nil {
			continue // kept in the trees (trees.go)
		}
		t.schema.Name = t.Name
		s.Tables[t.Name] = t.schema
	}
	// Derived, so not among the snapshot's Tables (usage.go).
	s.Tables[tableUsage] = usageSchema()
	s.Tables[tableSessionCounts] = sessionCountsSchema()
	return s
}

func stringIndex(name, field string, unique, lowercase bool) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, Unique: unique,
		Indexer: &memdb.StringFieldIndex{Field: field, Lowercase: lowercase}}
}

// All returns every object of a table in id order (snapshots, determinism tests).
func (t *Txn) All(table string) ([]any, error) {
	if out, ok := t.allInTrees(table); ok {
		return out, nil
	}
	it, err := t.tx.Get(table, "id")
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", table, err)
	}
	var out []any
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw)
	}
	return out, nil
}
