package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-cluster/berth/shared/api"
)

// How many sessions are in each status, derived like occupancy: moved by
// PutSession and CollectSession in the same transaction as the record,
// rebuilt on restore, never in a snapshot. Ended sessions are the bulk of
// the table and are not in the status index (sessions.go), so counting
// them must not mean reading them.

type sessionCount struct {
	Status api.SessionStatus
	N      int
}

const tableSessionCounts = "session_counts"

func sessionCountsSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableSessionCounts, Indexes: map[string]*memdb.IndexSchema{
		"id": stringIndex("id", "Status", true, false),
	}}
}

// countStatus moves one session from status from to status to ("": none).
func (t *Txn) countStatus(from, to api.SessionStatus) error {
	if from == to {
		return nil
	}
	for _, c := range []struct {
		status api.SessionStatus
		by     int
	}{{from, -1}, {to, 1}} {
		if c.status == "" {
			continue
		}
		old, err := first[sessionCount](t, tableSessionCounts, "id", string(c.status))
		if err != nil {
			return err
		}
		n := &sessionCount{Status: c.status, N: c.by}
		if old != nil {
			n.N += old.N
		}
		if n.N <= 0 {
			if old != nil {
				if err := t.remove(tableSessionCounts, old); err != nil {
					return err
				}
			}
			continue
		}
		if err := t.tx.Insert(tableSessionCounts, n); err != nil {
			return fmt.Errorf("insert into %s: %w", tableSessionCounts, err)
		}
	}
	return nil
}

// CountSessionsInStatus is how many sessions are in one status.
func (t *Txn) CountSessionsInStatus(status api.SessionStatus) (int, error) {
	c, err := first[sessionCount](t, tableSessionCounts, "id", string(status))
	if err != nil || c == nil {
		return 0, err
	}
	return c.N, nil
}
