package state

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
)

// User is a person. Email (stored lower-case) is the id; users are never
// deleted, only made inactive.
type User struct {
	Email              string    `json:"email"`
	Username           string    `json:"username"`
	FullName           string    `json:"full_name"`
	PasswordHash       string    `json:"password_hash"`
	Role               string    `json:"role"`
	Status             string    `json:"status"`
	NeedPasswordChange bool      `json:"need_password_change"`
	Domain             string    `json:"domain"`
	Groups             []string  `json:"groups"`
	Description        string    `json:"description"`
	CreatedAt          time.Time `json:"created_at"`
	ModifiedAt         time.Time `json:"modified_at"`
	Meta
}

func (u *User) id() string { return u.Email }

// Copy returns a deep copy to modify and put back.
func (u *User) Copy() *User {
	c := *u
	c.Groups = slices.Clone(u.Groups)
	return &c
}

const tableUsers = "users"

func usersTable() Table {
	return Table{Name: tableUsers, ID: 4, New: func() any { return new(User) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "Email", true, false),
			// No newest-first index: an index entry costs a user about
			// 400 bytes (state/compact.go), and users are listed by
			// people, a page at a time (Users sorts them).
			"username": stringIndex("username", "Username", true, true),
		}}}
}

// User returns the user with the email or nil.
func (t *Txn) User(email string) (*User, error) { return first[User](t, tableUsers, "id", email) }

// UserByUsername finds a user by username, case-insensitively.
func (t *Txn) UserByUsername(name string) (*User, error) {
	return first[User](t, tableUsers, "username", name)
}

// Users pages through users newest first (by the Raft index that created
// them) from cursor, keeping those keep accepts (nil: all); next is the
// opaque cursor of the following page, "" at the end. The table has no
// newest-first index (an index costs every user about 400 bytes), so a
// page reads the table and keeps the newest limit+1 in a heap: a page of
// 50 out of 100,000 users takes milliseconds, not a sort of them all.
func (t *Txn) Users(cursor string, limit int, keep func(*User) bool) (users []*User, next string, err error) {
	from := func(*User) bool { return true }
	if cursor != "" {
		if inv, id, ok := parseNewestKey(cursor); ok {
			from = func(u *User) bool {
				k := ^u.CreateIndex
				return k > inv || (k == inv && u.Email >= id)
			}
		} else {
			from = func(u *User) bool { return newestKey(u) >= cursor }
		}
	}
	h := &newestUsers{}
	if err := t.EachUser(keep, func(u *User) error {
		if !from(u) {
			return nil
		}
		if limit <= 0 || h.Len() <= limit {
			heap.Push(h, u)
		} else if newerUser(u, (*h)[0]) < 0 {
			(*h)[0] = u
			heap.Fix(h, 0)
		}
		return nil
	}); err != nil {
		return nil, "", err
	}
	all := []*User(*h)
	slices.SortFunc(all, newerUser)
	if limit > 0 && len(all) > limit {
		return all[:limit], newestKey(all[limit]), nil
	}
	return all, "", nil
}

// newerUser orders users as newestKey does, without building keys: the
// creating index descending, then the email.
func newerUser(x, y *User) int {
	if c := cmp.Compare(y.CreateIndex, x.CreateIndex); c != 0 {
		return c
	}
	return strings.Compare(x.Email, y.Email)
}

// parseNewestKey reads a newestKey cursor back: the inverted creation
// index and the id.
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

// newestUsers is a max-heap in newest-first order: its root is the oldest
// user kept, the first to give way to a newer one.
type newestUsers []*User

func (h newestUsers) Len() int           { return len(h) }
func (h newestUsers) Less(i, j int) bool { return newerUser(h[i], h[j]) > 0 }
func (h newestUsers) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *newestUsers) Push(x any)        { *h = append(*h, x.(*User)) }
func (h *newestUsers) Pop() any {
	old := *h
	u := old[len(old)-1]
	*h = old[:len(old)-1]
	return u
}

// PutUser inserts or replaces a user at the Raft index.
func (t *Txn) PutUser(index uint64, u *User) error {
	t.compactUser(u)
	return t.put(tableUsers, index, u)
}

// EachUser calls f for every user keep accepts, in email order, stopping at
// the first error. Exports stream through it without building a list.
func (t *Txn) EachUser(keep func(*User) bool, f func(*User) error) error {
	return each(t, tableUsers, keep, f)
}
