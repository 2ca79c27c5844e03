package state

import (
	"slices"
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
// opaque cursor of the following page, "" at the end.
func (t *Txn) Users(cursor string, limit int, keep func(*User) bool) (users []*User, next string, err error) {
	var all []*User
	if err := t.EachUser(keep, func(u *User) error {
		if cursor == "" || newestKey(u) >= cursor {
			all = append(all, u)
		}
		return nil
	}); err != nil {
		return nil, "", err
	}
	slices.SortFunc(all, func(x, y *User) int { return strings.Compare(newestKey(x), newestKey(y)) })
	if limit > 0 && len(all) > limit {
		return all[:limit], newestKey(all[limit]), nil
	}
	return all, "", nil
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
