// Package state is the manager's replicated state: go-memdb tables rebuilt
// from the Raft log and snapshots. Only the FSM writes to it (through Write);
// everything else reads through Read. Objects handed out by a read are shared
// with the store and must never be mutated: copy, change, put.
package state

import (
	"fmt"
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

// Store holds the current database. Restore swaps it whole, so readers that
// started before a restore keep a consistent view.
type Store struct {
	db atomic.Pointer[memdb.MemDB]
	// swapped is closed when Swap replaces the database: the watch
	// channels of reads of the old one would never fire.
	swapped atomic.Pointer[chan struct{}]
}

// New returns an empty store.
func New() *Store {
	s := &Store{}
	s.db.Store(newDB())
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
	tx *memdb.Txn
	// swapped (reads only) closes when the store's database is replaced.
	swapped <-chan struct{}
}

// Read opens a read-only transaction.
func (s *Store) Read() *Txn {
	// The channel is taken before the database: a swap in between closes it.
	swapped := *s.swapped.Load()
	return &Txn{tx: s.db.Load().Txn(false), swapped: swapped}
}

// Write opens the write transaction. Only the FSM calls it, one at a time.
func (s *Store) Write() *Txn { return &Txn{tx: s.db.Load().Txn(true)} }

// Commit makes a write transaction's changes visible.
func (t *Txn) Commit() { t.tx.Commit() }

// Abort drops a write transaction's changes; harmless after Commit and on reads.
func (t *Txn) Abort() { t.tx.Abort() }

// Snapshot returns a point-in-time copy of the store for the FSM snapshot.
func (s *Store) Snapshot() *Store {
	c := &Store{}
	c.db.Store(s.db.Load().Snapshot())
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
	s.db.Store(other.db.Load())
	ch := make(chan struct{})
	close(*s.swapped.Swap(&ch))
}

// put stamps the object with the Raft index and inserts it.
func (t *Txn) put(table string, index uint64, obj versioned) error {
	m := obj.meta()
	if m.CreateIndex == 0 {
		m.CreateIndex = index
	}
	m.ModifyIndex = index
	if err := t.tx.Insert(table, obj); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return t.markWrite(table, index, obj)
}

// Insert puts an object exactly as it is (snapshot restore).
func (t *Txn) Insert(table string, obj any) error {
	if err := t.tx.Insert(table, obj); err != nil {
		return fmt.Errorf("restore into %s: %w", table, err)
	}
	if s, ok := obj.(*Session); ok && table == tableSessions {
		// Occupancy is derived, not in the snapshot: rebuilt here.
		if err := t.account(s, 1); err != nil {
			return err
		}
	}
	return t.markRestored(table, obj)
}

func (t *Txn) remove(table string, obj any) error {
	if err := t.tx.Delete(table, obj); err != nil {
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

// after lists objects whose id sorts after cursor, at most limit of them
// (limit <= 0: no bound). Ids never change, so a cursor stays valid while
// other objects are written.
func after[T any](t *Txn, table, cursor string, limit int, keep func(*T) bool) ([]*T, string, error) {
	it, err := t.tx.LowerBound(table, "id", cursor)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", table, err)
	}
	var out []*T
	next := ""
	for raw := it.Next(); raw != nil; raw = it.Next() {
		obj := raw.(*T)
		if keep != nil && !keep(obj) {
			continue
		}
		if limit > 0 && len(out) == limit {
			next = idOf(obj)
			break
		}
		out = append(out, obj)
	}
	return out, next, nil
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

// newestIndex orders a table newest first: the key is the creating Raft
// index inverted, in hex (at most 16 edges per radix node however many
// objects are created in a row), then the id for objects one entry made
// together. The key is also the list cursor (NewestKey).
type newestIndex struct{}

// NewestKey is an object's key in newest-first order: keys sort
// ascending from the newest object to the oldest. Lists sorted in memory
// use it as their cursor too.
func NewestKey(obj any) string { return newestKey(obj) }

func newestKey(obj any) string {
	return fmt.Sprintf("%016x:%s", ^obj.(versioned).meta().CreateIndex, idOf(obj))
}

func (newestIndex) FromObject(raw any) (bool, []byte, error) {
	if _, ok := raw.(versioned); !ok {
		return false, nil, fmt.Errorf("newest index: %T has no creation index", raw)
	}
	return true, append([]byte(newestKey(raw)), 0), nil
}

func (newestIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("newest index takes one key, got %d", len(args))
	}
	k, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("newest index key must be a string, got %T", args[0])
	}
	return append([]byte(k), 0), nil
}

func newestIndexSchema() *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: "newest", Unique: true, Indexer: newestIndex{}}
}

// newest lists objects newest first from cursor (a key of newestIndex, ""
// for the start), at most limit of them (<= 0: no bound); next is the
// cursor of the following page.
func newest[T any](t *Txn, table, cursor string, limit int, keep func(*T) bool) ([]*T, string, error) {
	it, err := t.tx.LowerBound(table, "newest", cursor)
	if err != nil {
		return nil, "", fmt.Errorf("list %s newest first: %w", table, err)
	}
	var out []*T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		obj := raw.(*T)
		if keep != nil && !keep(obj) {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, newestKey(raw), nil
		}
		out = append(out, obj)
	}
	return out, "", nil
}
