package state

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/btree"
)

// The sessions, users and keypairs tables keep their records and indexes
// here, not in go-memdb. A go-memdb index entry costs about 400 bytes
// whatever its key (a go-immutable-radix node and leaf, each with a watch
// channel), so a session with four indexes, or a user with its keypair and
// their four, spent more on indexes than on itself: these are the tables
// that grow with the people and the work. Here each index is a
// copy-on-write B-tree (github.com/google/btree) whose items are the record
// pointers themselves, ordered by comparing the records' fields: a few
// bytes per record and index, no copy of a key.
//
// Versions: a write transaction clones the current version's trees (O(1):
// the nodes are shared until written), changes its clones and, on Commit,
// publishes them with the go-memdb snapshot of the same commit as one
// version (store.go); an aborted write drops them. A reader holds one
// version for its whole transaction. A published tree is never written
// again. Cloning it writes only its copy-on-write context, which reads
// never touch (they read the root and the nodes), so readers may read it
// meanwhile; only the writer clones (google/btree: no two clones at once).

// treeDegree: nodes of 15 to 31 items; a write copies about four nodes
// per index at 100,000 records, and a node's slack stays a few bytes per
// item.
const treeDegree = 16

// errNotFound is what deleting a record that is not there says, as go-memdb
// did for these tables.
var errNotFound = errors.New("not found")

func newTree[T any](less btree.LessFunc[T]) *btree.BTreeG[T] {
	// No free list: a node freed by one version could be visible in
	// another.
	return btree.NewWithFreeListG(treeDegree, less, btree.NewFreeListG[T](0))
}

// trees are the indexes of one version of the three tables.
type trees struct {
	sessions        *btree.BTreeG[*Session]     // id
	sessionsNewest  *btree.BTreeG[*Session]     // newest first: creating index descending, id
	sessionsLive    *btree.BTreeG[*Session]     // status, id; only sessions that have not ended
	sessionsOnAgent *btree.BTreeG[agentSession] // agent, id; only occupying sessions, once per agent
	users           *btree.BTreeG[*User]        // email
	usersByName     *btree.BTreeG[*User]        // username case-insensitively, email
	usersNewest     *btree.BTreeG[*User]        // newest first: creating index descending, email
	keypairs        *btree.BTreeG[*Keypair]     // access key
	keypairsOfUser  *btree.BTreeG[*Keypair]     // user, access key
}

// agentSession is an occupying session under one of its agents.
type agentSession struct {
	agent string
	s     *Session
}

func newTrees() *trees {
	return &trees{
		sessions:        newTree(func(a, b *Session) bool { return a.ID < b.ID }),
		sessionsNewest:  newTree(func(a, b *Session) bool { return newer(&a.Meta, a.ID, &b.Meta, b.ID) < 0 }),
		sessionsLive:    newTree(func(a, b *Session) bool { return a.Status < b.Status || a.Status == b.Status && a.ID < b.ID }),
		sessionsOnAgent: newTree(func(a, b agentSession) bool { return a.agent < b.agent || a.agent == b.agent && a.s.ID < b.s.ID }),
		users:           newTree(func(a, b *User) bool { return a.Email < b.Email }),
		usersByName:     newTree(func(a, b *User) bool { return byUsername(a, b) < 0 }),
		usersNewest:     newTree(func(a, b *User) bool { return newer(&a.Meta, a.Email, &b.Meta, b.Email) < 0 }),
		keypairs:        newTree(func(a, b *Keypair) bool { return a.AccessKey < b.AccessKey }),
		keypairsOfUser:  newTree(func(a, b *Keypair) bool { return a.User < b.User || a.User == b.User && a.AccessKey < b.AccessKey }),
	}
}

// clone is an O(1) copy: writes to either side copy the nodes they touch.
// Only the writer clones (one goroutine at a time).
func (tr *trees) clone() *trees {
	return &trees{
		sessions:        tr.sessions.Clone(),
		sessionsNewest:  tr.sessionsNewest.Clone(),
		sessionsLive:    tr.sessionsLive.Clone(),
		sessionsOnAgent: tr.sessionsOnAgent.Clone(),
		users:           tr.users.Clone(),
		usersByName:     tr.usersByName.Clone(),
		usersNewest:     tr.usersNewest.Clone(),
		keypairs:        tr.keypairs.Clone(),
		keypairsOfUser:  tr.keypairsOfUser.Clone(),
	}
}

// newer orders objects as newestKey does, without building keys: the
// creating index descending, then the id.
func newer(a *Meta, aID string, b *Meta, bID string) int {
	switch {
	case a.CreateIndex > b.CreateIndex:
		return -1
	case a.CreateIndex < b.CreateIndex:
		return 1
	}
	return strings.Compare(aID, bID)
}

// byUsername is the username index's order: case-insensitive, as the
// go-memdb index it replaces was (strings.ToLower allocates nothing for a
// name already in lower case), then the email, so that two records never
// compare equal.
func byUsername(a, b *User) int {
	if c := strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username)); c != 0 {
		return c
	}
	return strings.Compare(a.Email, b.Email)
}

// Sessions.

func (tr *trees) session(id string) *Session {
	s, _ := tr.sessions.Get(&Session{ID: id})
	return s
}

func (tr *trees) putSession(s *Session) error {
	if s.ID == "" {
		return errors.New("missing value for index 'id'")
	}
	if old, ok := tr.sessions.ReplaceOrInsert(s); ok {
		tr.unindexSession(old)
	}
	tr.sessionsNewest.ReplaceOrInsert(s)
	if !s.Status.Ended() {
		tr.sessionsLive.ReplaceOrInsert(s)
	}
	if s.Status.Occupying() {
		for _, a := range s.Agents {
			if a != "" {
				tr.sessionsOnAgent.ReplaceOrInsert(agentSession{a, s})
			}
		}
	}
	return nil
}

func (tr *trees) deleteSession(s *Session) error {
	old, ok := tr.sessions.Delete(s)
	if !ok {
		return errNotFound
	}
	tr.unindexSession(old)
	return nil
}

// unindexSession takes a version out of the secondary indexes, by its own
// fields (the version replacing it may sort elsewhere).
func (tr *trees) unindexSession(s *Session) {
	tr.sessionsNewest.Delete(s)
	if !s.Status.Ended() {
		tr.sessionsLive.Delete(s)
	}
	if s.Status.Occupying() {
		for _, a := range s.Agents {
			tr.sessionsOnAgent.Delete(agentSession{a, s})
		}
	}
}

// Users.

func (tr *trees) user(email string) *User {
	u, _ := tr.users.Get(&User{Email: email})
	return u
}

func (tr *trees) putUser(u *User) error {
	switch {
	case u.Email == "":
		return errors.New("missing value for index 'id'")
	case u.Username == "":
		return errors.New("missing value for index 'username'")
	}
	if old, ok := tr.users.ReplaceOrInsert(u); ok {
		tr.usersByName.Delete(old)
		tr.usersNewest.Delete(old)
	}
	tr.usersByName.ReplaceOrInsert(u)
	tr.usersNewest.ReplaceOrInsert(u)
	return nil
}

func (tr *trees) deleteUser(u *User) error {
	old, ok := tr.users.Delete(u)
	if !ok {
		return errNotFound
	}
	tr.usersByName.Delete(old)
	tr.usersNewest.Delete(old)
	return nil
}

// Keypairs.

func (tr *trees) keypair(accessKey string) *Keypair {
	k, _ := tr.keypairs.Get(&Keypair{AccessKey: accessKey})
	return k
}

func (tr *trees) putKeypair(k *Keypair) error {
	switch {
	case k.AccessKey == "":
		return errors.New("missing value for index 'id'")
	case k.User == "":
		return errors.New("missing value for index 'user'")
	}
	if old, ok := tr.keypairs.ReplaceOrInsert(k); ok {
		tr.keypairsOfUser.Delete(old)
	}
	tr.keypairsOfUser.ReplaceOrInsert(k)
	return nil
}

func (tr *trees) deleteKeypair(k *Keypair) error {
	old, ok := tr.keypairs.Delete(k)
	if !ok {
		return errNotFound
	}
	tr.keypairsOfUser.Delete(old)
	return nil
}

// stable is the tree to iterate in t: a read's own, or in a write a clone,
// so that the iteration's callback may write the table.
func stable[T any](t *Txn, b *btree.BTreeG[T]) *btree.BTreeG[T] {
	if t.write {
		return b.Clone()
	}
	return b
}

// ascend calls f for every item from pivot on (every item when from is
// false) in t's version, until f returns false.
func ascend[T any](t *Txn, b *btree.BTreeG[T], from bool, pivot T, f func(T) bool) {
	b = stable(t, b)
	if from {
		b.AscendGreaterOrEqual(pivot, f)
	} else {
		b.Ascend(f)
	}
}

// put puts obj into its table when the table is kept here; handled says
// whether it is.
func (tr *trees) put(table string, obj any) (handled bool, err error) {
	switch o := obj.(type) {
	case *Session:
		if table == tableSessions {
			return true, tr.putSession(o)
		}
	case *User:
		if table == tableUsers {
			return true, tr.putUser(o)
		}
	case *Keypair:
		if table == tableKeypairs {
			return true, tr.putKeypair(o)
		}
	}
	return isTreeTable(table), errWrongType(table, obj)
}

func (tr *trees) remove(table string, obj any) (handled bool, err error) {
	switch o := obj.(type) {
	case *Session:
		if table == tableSessions {
			return true, tr.deleteSession(o)
		}
	case *User:
		if table == tableUsers {
			return true, tr.deleteUser(o)
		}
	case *Keypair:
		if table == tableKeypairs {
			return true, tr.deleteKeypair(o)
		}
	}
	return isTreeTable(table), errWrongType(table, obj)
}

func isTreeTable(table string) bool {
	return table == tableSessions || table == tableUsers || table == tableKeypairs
}

func errWrongType(table string, obj any) error {
	if !isTreeTable(table) {
		return nil
	}
	return errors.New("a " + typeName(obj) + " does not belong in " + table)
}

func typeName(obj any) string {
	switch obj.(type) {
	case *Session:
		return "session"
	case *User:
		return "user"
	case *Keypair:
		return "keypair"
	}
	return "record of another table"
}

// allInTrees returns a tree table's records in id order; ok is false for a
// table kept in go-memdb.
func (t *Txn) allInTrees(table string) (out []any, ok bool) {
	switch table {
	case tableSessions:
		ascend(t, t.tr.sessions, false, nil, func(s *Session) bool { out = append(out, s); return true })
	case tableUsers:
		ascend(t, t.tr.users, false, nil, func(u *User) bool { out = append(out, u); return true })
	case tableKeypairs:
		ascend(t, t.tr.keypairs, false, nil, func(k *Keypair) bool { out = append(out, k); return true })
	default:
		return nil, false
	}
	return out, true
}

// newestPage lists a newest-first tree from cursor (a NewestKey, "" for
// the start), at most limit records (<= 0: no bound) that keep accepts
// (nil: all); next is the cursor of the following page, "" at the end.
// probe makes a record that sorts where a key does. A cursor that is not
// a key (none this package gave out) still starts where it sorts among
// the keys, found by reading from the start.
func newestPage[T any](t *Txn, b *btree.BTreeG[*T], cursor string, limit int, keep func(*T) bool, probe func(create uint64, id string) *T) (out []*T, next string) {
	var pivot *T
	from := func(*T) bool { return true }
	if cursor != "" {
		if inv, id, ok := parseNewestKey(cursor); ok {
			pivot = probe(^inv, id)
		} else {
			from = func(obj *T) bool { return newestKey(obj) >= cursor }
		}
	}
	started := false
	ascend(t, b, pivot != nil, pivot, func(obj *T) bool {
		if !started {
			if !from(obj) {
				return true
			}
			started = true
		}
		if keep != nil && !keep(obj) {
			return true
		}
		if limit > 0 && len(out) == limit {
			next = newestKey(obj)
			return false
		}
		out = append(out, obj)
		return true
	})
	return out, next
}

// parseNewestKey reads a NewestKey back: the inverted creation index and
// the id. Only a key as newestKey writes it parses (lower-case hex), so
// comparing the parts orders as comparing the strings.
func parseNewestKey(key string) (inv uint64, id string, ok bool) {
	if len(key) < 17 || key[16] != ':' {
		return 0, "", false
	}
	inv, err := strconv.ParseUint(key[:16], 16, 64)
	if err != nil || fmt.Sprintf("%016x", inv) != key[:16] {
		return 0, "", false
	}
	return inv, key[17:], true
}
