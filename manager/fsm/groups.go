package fsm

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
)

// GroupCreate creates a group in an existing domain.
type GroupCreate struct {
	Group state.Group `json:"group"`
}

// MsgType implements Command.
func (GroupCreate) MsgType() MsgType { return MsgGroupCreate }

func applyGroupCreate(tx *state.Txn, index uint64, c *GroupCreate) (any, error) {
	d, err := tx.Domain(c.Group.Domain)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, apierr.New(apierr.NotFound, "no domain %s", c.Group.Domain)
	}
	old, err := tx.Group(c.Group.Domain, c.Group.Name)
	if err != nil {
		return nil, err
	}
	if old != nil {
		return nil, apierr.Field(apierr.Conflict, "name", fmt.Sprintf("group %s already exists in domain %s", c.Group.Name, c.Group.Domain))
	}
	g := c.Group
	if err := tx.PutGroup(index, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// GroupUpdate changes a group's description or activity.
type GroupUpdate struct {
	Domain      string  `json:"domain"`
	Name        string  `json:"name"`
	Description *string `json:"description,omitempty"`
	IsActive    *bool   `json:"is_active,omitempty"`
}

// MsgType implements Command.
func (GroupUpdate) MsgType() MsgType { return MsgGroupUpdate }

func applyGroupUpdate(tx *state.Txn, index uint64, c *GroupUpdate) (any, error) {
	old, err := tx.Group(c.Domain, c.Name)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, apierr.New(apierr.NotFound, "no group %s in domain %s", c.Name, c.Domain)
	}
	g := *old
	setIf(&g.Description, c.Description)
	setIf(&g.IsActive, c.IsActive)
	if err := tx.PutGroup(index, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// GroupMembers adds users to and removes users from a group. All named users
// must exist and belong to the group's domain, or nothing changes.
type GroupMembers struct {
	Domain     string    `json:"domain"`
	Name       string    `json:"name"`
	Add        []string  `json:"add"`
	Remove     []string  `json:"remove"`
	ModifiedAt time.Time `json:"modified_at"`
}

// MsgType implements Command.
func (GroupMembers) MsgType() MsgType { return MsgGroupMembers }

func applyGroupMembers(tx *state.Txn, index uint64, c *GroupMembers) (any, error) {
	g, err := tx.Group(c.Domain, c.Name)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, apierr.New(apierr.NotFound, "no group %s in domain %s", c.Name, c.Domain)
	}
	var bad apierr.Fields
	users := map[string]*state.User{}
	for _, list := range []struct {
		field  string
		emails []string
	}{{"add", c.Add}, {"remove", c.Remove}} {
		for _, e := range list.emails {
			u, err := tx.User(e)
			if err != nil {
				return nil, err
			}
			switch {
			case u == nil:
				bad.Add(list.field, "no user with email %s", e)
			case u.Domain != c.Domain:
				bad.Add(list.field, "user %s belongs to domain %s, not %s", e, u.Domain, c.Domain)
			default:
				if users[e] == nil {
					users[e] = u.Copy()
				}
			}
		}
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	for _, e := range c.Add {
		if u := users[e]; !slices.Contains(u.Groups, c.Name) {
			u.Groups = append(u.Groups, c.Name)
			slices.Sort(u.Groups)
		}
	}
	for _, e := range c.Remove {
		u := users[e]
		u.Groups = slices.DeleteFunc(u.Groups, func(g string) bool { return g == c.Name })
	}
	// Users in both lists end up removed: removal is applied last.
	for _, e := range slices.Sorted(maps.Keys(users)) {
		u := users[e]
		u.ModifiedAt = c.ModifiedAt
		if err := tx.PutUser(index, u); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
