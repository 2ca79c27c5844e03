package state

import (
	"slices"
	"strings"
	"time"
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

// The users table keeps its records and indexes in B-trees (trees.go): by
// email, by username (case-insensitively) and newest first (lists).
func usersTable() Table {
	return Table{Name: tableUsers, ID: 4, New: func() any { return new(User) }}
}

// User returns the user with the email or nil.
func (t *Txn) User(email string) (*User, error) { return t.tr.user(email), nil }

// UserByUsername finds a user by username, case-insensitively.
func (t *Txn) UserByUsername(name string) (*User, error) {
	var found *User
	ascend(t, t.tr.usersByName, true, &User{Username: name}, func(u *User) bool {
		if strings.ToLower(u.Username) == strings.ToLower(name) {
			found = u
		}
		return false
	})
	return found, nil
}

// Users pages through users newest first (by the Raft index that created
// them) from cursor, keeping those keep accepts (nil: all); next is the
// opaque cursor of the following page, "" at the end.
func (t *Txn) Users(cursor string, limit int, keep func(*User) bool) (users []*User, next string, err error) {
	users, next = newestPage(t, t.tr.usersNewest, cursor, limit, keep, func(create uint64, email string) *User {
		return &User{Email: email, Meta: Meta{CreateIndex: create}}
	})
	return users, next, nil
}

// PutUser inserts or replaces a user at the Raft index.
func (t *Txn) PutUser(index uint64, u *User) error {
	t.compactUser(u)
	return t.put(tableUsers, index, u)
}

// EachUser calls f for every user keep accepts, in email order, stopping at
// the first error. Exports stream through it without building a list.
func (t *Txn) EachUser(keep func(*User) bool, f func(*User) error) error {
	var err error
	ascend(t, t.tr.users, false, nil, func(u *User) bool {
		if keep == nil || keep(u) {
			err = f(u)
		}
		return err == nil
	})
	return err
}
