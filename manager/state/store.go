// Package state is the manager's replicated state: go-memdb tables, and
// B-trees for the sessions, users and keypairs (trees.go), rebuilt from the
// Raft log and snapshots. Only the FSM writes to it (through Write);
// everything else reads through Read. Objects handed out by a read are shared
// with the store and must never be mutated: copy, change, put.
package state

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"
)

// Meta is carried by every object: the Raft indexes that created and last
// modified it. They are the version of the object.
type Meta struct {
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

func (m *Meta) meta() *Meta { return m }

type versioned interface{ meta() *Meta }

// Store holds the current version of the state: the go-memdb database of
// the small tables and the B-trees of the sessions, users and keypairs
// (trees.go), published together so that a reader never sees one of them
// at another commit than the other. Restore swaps it whole, so readers
// that started before a restore keep a consistent view.
type Store struct {
	cur atomic.Pointer[version]
	// db is the database the writer writes (only Write, Commit and Swap
	// touch it); readers read snapshots of it (version).
	db *memdb.MemDB
	// log hears what the writes find worth saying (a session whose times
	// are inconsistent); nil: nothing is said.
	log *slog.Logger
	in  *interner
	// swapped is closed when Swap replaces the database: the watch
	// channels of reads of the old one would never fire.
	swapped atomic.Pointer[chan struct{}]
	// watches are the sessions someone waits on (desired.go).
	watches sessionWatches
}

// version is one commit: a go-memdb snapshot and the trees, neither ever
// written again (the next write clones the trees: trees.go).
type version struct {
	db *memdb.MemDB
	tr *trees
}

// SetLog gives the store's writes a logger; call it before the first
// write.
func (s *Store) SetLog(l *slog.Logger) { s.log = l }

// New returns an empty store.
func New() *Store {
	s := &Store{in: newInterner(), db: newDB()}
	s.cur.Store(&version{db: s.db.Snapshot(), tr: newTrees()})
	ch := make(chan struct{})
	s.swapped.Store(&ch)
	return s
}

func newDB() *memdb.MemDB {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		// The schema is a constant of this program: an invalid one is a bug
		// that every test would hit first.
		panic(fmt.Sprintf("state: invalid schema: %v", err))
	}
	return db
}

// Txn is a transaction on the store; reads see one consistent version.
type Txn struct {
	tx  *memdb.Txn
	tr  *trees
	st  *Store
	log *slog.Logger
	in  *interner // the writer's; nil on reads
	// write: a write transaction; done once it committed or aborted.
	write, done bool
	// changed are the sessions this write changed, for their watches;
	// past maxTracked, changedMany stands for all of them.
	changed     []string
	changedMany bool
	// swapped (reads only) closes when the store's database is replaced.
	swapped <-chan struct{}
}

// Read opens a read-only transaction.
func (s *Store) Read() *Txn {
	// The channel is taken before the version: a swap in between closes it.
	swapped := *s.swapped.Load()
	v := s.cur.Load()
	return &Txn{tx: v.db.Txn(false), tr: v.tr, st: s, swapped: swapped}
}

// Write opens the write transaction. Only the FSM calls it, one at a time.
func (s *Store) Write() *Txn {
	// go-memdb's writer lock first: a second writer waits here for the
	// first to end, then clones what it committed.
	tx := s.db.Txn(true)
	return &Txn{tx: tx, tr: s.cur.Load().tr.clone(), st: s, log: s.log, in: s.in, write: true}
}

// Commit makes a write transaction's changes visible: the database and
// the trees as one new version.
func (t *Txn) Commit() {
	if !t.write || t.done {
		t.tx.Commit()
		return
	}
	t.done = true
	t.tx.Commit()
	t.st.publish(&version{db: t.st.db.Snapshot(), tr: t.tr}, t)
}

// Abort drops a write transaction's changes; harmless after Commit and on reads.
func (t *Txn) Abort() {
	t.tx.Abort()
	t.done = true
}

// Snapshot returns a point-in-time copy of the store for the FSM snapshot:
// the current version, shared (nothing writes a published version). The
// copy is only read.
func (s *Store) Snapshot() *Store {
	v := s.cur.Load()
	c := &Store{db: v.db.Snapshot()}
	c.cur.Store(v)
	ch := make(chan struct{})
	c.swapped.Store(&ch)
	return c
}

// Reset replaces the content with an empty database and returns a write
// transaction on it; the FSM fills it while restoring a snapshot and commits.
// The new database becomes visible to readers only through Swap.
func Reset() (*Store, *Txn) {
	s := New()
	return s, s.Write()
}

// Swap makes other's database the current one (after a restore) and wakes
// the blocking queries watching the old one.
func (s *Store) Swap(other *Store) {
	s.db = other.db
	s.cur.Store(other.cur.Load())
	ch := make(chan struct{})
	close(*s.swapped.Swap(&ch))
	s.watches.fireAll()
}

// put stamps the object with the Raft index and inserts it.
func (t *Txn) put(table string, index uint64, obj versioned) error {
	m := obj.meta()
	if m.CreateIndex == 0 {
		m.CreateIndex = index
	}
	m.ModifyIndex = index
	if err := t.insert(table, obj); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return t.markWrite(table, index, obj)
}

// Insert puts an object exactly as it is (snapshot restore).
func (t *Txn) Insert(table string, obj any) error {
	switch o := obj.(type) {
	case *UsageDay:
		return t.insertUsageDay(o)
	case *desiredMark:
		// The larger of the snapshot's and what the records restored
		// so far stand for (desired.go).
		return t.markRestored(table, o)
	case *Session:
		t.compactSession(o)
	case *User:
		t.compactUser(o)
	case *Keypair:
		t.compactKeypair(o)
	}
	if err := t.insert(table, obj); err != nil {
		return fmt.Errorf("restore into %s: %w", table, err)
	}
	if s, ok := obj.(*Session); ok && table == tableSessions {
		// Occupancy, the usage rows' Held tallies and the counts by
		// status are derived, not in the snapshot: rebuilt here.
		if err := t.account(s, 1); err != nil {
			return err
		}
		if err := t.countStatus("", s.Status); err != nil {
			return err
		}
		if err := t.accrue(nil, s); err != nil {
			return err
		}
	}
	return t.markRestored(table, obj)
}

// insert puts obj into its table, in the trees or in go-memdb.
func (t *Txn) insert(table string, obj any) error {
	if !t.write {
		return fmt.Errorf("write to %s in a read transaction", table)
	}
	if ok, err := t.tr.put(table, obj); ok {
		if err == nil {
			t.touched(table, obj)
		}
		return err
	}
	return t.tx.Insert(table, obj)
}

func (t *Txn) remove(table string, obj any) error {
	if !t.write {
		return fmt.Errorf("delete from %s in a read transaction", table)
	}
	ok, err := t.tr.remove(table, obj)
	if !ok {
		err = t.tx.Delete(table, obj)
	} else if err == nil {
		t.touched(table, obj)
	}
	if err != nil {
		return fmt.Errorf("delete from %s: %w", table, err)
	}
	return nil
}

func first[T any](t *Txn, table, index string, args ...any) (*T, error) {
	raw, err := t.tx.First(table, index, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s by %s: %w", table, index, err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*T), nil
}

func list[T any](t *Txn, table, index string, args ...any) ([]*T, error) {
	it, err := t.tx.Get(table, index, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s by %s: %w", table, index, err)
	}
	var out []*T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*T))
	}
	return out, nil
}

// count is how many objects an index holds for args.
func count(t *Txn, table, index string, args ...any) (int, error) {
	it, err := t.tx.Get(table, index, args...)
	if err != nil {
		return 0, fmt.Errorf("count %s by %s: %w", table, index, err)
	}
	n := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	return n, nil
}

func each[T any](t *Txn, table string, keep func(*T) bool, f func(*T) error) error {
	it, err := t.tx.Get(table, "id")
	if err != nil {
		return fmt.Errorf("scan %s: %w", table, err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		obj := raw.(*T)
		if keep != nil && !keep(obj) {
			continue
		}
		if err := f(obj); err != nil {
			return err
		}
	}
	return nil
}

// NewestKey is an object's key in newest-first order: the creating Raft
// index inverted, in hex, then the id for objects one entry made together;
// keys sort ascending from the newest object to the oldest. It is the
// cursor of newest-first lists (newestPage), which compare records as the
// keys would (newer) without building them.
func NewestKey(obj any) string { return newestKey(obj) }

func newestKey(obj any) string {
	return fmt.Sprintf("%016x:%s", ^obj.(versioned).meta().CreateIndex, idOf(obj))
}
