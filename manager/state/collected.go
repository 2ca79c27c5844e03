package state

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
)

// CollectedSession is what remains of a session the leader garbage
// collected after the retention: enough to answer a GET of it with "it was
// collected, and when" to those who could see it (its owner and domain),
// for as long again as the retention; its usage lives on in the usage rows.
type CollectedSession struct {
	ID           string    `json:"id"`
	Owner        string    `json:"owner"`
	Domain       string    `json:"domain"`
	TerminatedAt time.Time `json:"terminated_at"`
	CollectedAt  time.Time `json:"collected_at"`
}

func (c *CollectedSession) id() string { return c.ID }

const tableCollected = "collected_sessions"

func collectedTable() Table {
	return Table{Name: tableCollected, ID: 71, New: func() any { return new(CollectedSession) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "ID", true, false),
		}}}
}

// CollectedSession returns the mark of a collected session or nil.
func (t *Txn) CollectedSession(id string) (*CollectedSession, error) {
	return first[CollectedSession](t, tableCollected, "id", id)
}

// EachCollected calls f for every mark of a collected session, in id
// order.
func (t *Txn) EachCollected(f func(*CollectedSession) error) error {
	return each(t, tableCollected, nil, f)
}

// ForgetCollected removes the mark of a collected session.
func (t *Txn) ForgetCollected(c *CollectedSession) error { return t.remove(tableCollected, c) }

// CollectSession removes an ended session from the state, leaving a mark
// for GET and its usage in the rows: its contribution moves from the Held
// tallies to the Collected ones in this transaction, so the usage totals
// do not change.
func (t *Txn) CollectSession(s *Session, at time.Time) error {
	if !s.Status.Ended() {
		return fmt.Errorf("collect session %s: it is %s, not ended", s.ID, s.Status)
	}
	tallies := UsageOf(s).tallies()
	if err := t.addTallies(s, tallies, true, -1); err != nil {
		return err
	}
	if err := t.addTallies(s, tallies, false, 1); err != nil {
		return err
	}
	if err := t.countStatus(s.Status, ""); err != nil {
		return err
	}
	if err := t.remove(tableSessions, s); err != nil {
		return err
	}
	end := at
	if s.TerminatedAt != nil {
		end = *s.TerminatedAt
	}
	mark := &CollectedSession{ID: s.ID, Owner: s.Owner, Domain: s.Domain, TerminatedAt: end, CollectedAt: at}
	if err := t.tx.Insert(tableCollected, mark); err != nil {
		return fmt.Errorf("insert into %s: %w", tableCollected, err)
	}
	return nil
}
