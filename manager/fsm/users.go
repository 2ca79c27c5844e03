package fsm

import (
	"fmt"
	"slices"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// UserCreate creates a user with a first keypair.
type UserCreate struct {
	User    state.User    `json:"user"`
	Keypair state.Keypair `json:"keypair"`
}

// MsgType implements Command.
func (UserCreate) MsgType() MsgType { return MsgUserCreate }

func applyUserCreate(tx *state.Txn, index uint64, c *UserCreate) (any, error) {
	var conflicts apierr.Fields
	if u, err := tx.User(c.User.Email); err != nil {
		return nil, err
	} else if u != nil {
		conflicts.Add("email", "a user with email %s already exists", c.User.Email)
	}
	if u, err := tx.UserByUsername(c.User.Username); err != nil {
		return nil, err
	} else if u != nil {
		conflicts.Add("username", "the username %s is taken by %s", c.User.Username, u.Email)
	}
	if len(conflicts) > 0 {
		return nil, &apierr.Error{Kind: apierr.Conflict, Detail: conflicts[0].Reason, Fields: conflicts}
	}
	if err := checkMembership(tx, c.User.Domain, c.User.Groups); err != nil {
		return nil, err
	}
	if err := checkPolicy(tx, c.Keypair.ResourcePolicy); err != nil {
		return nil, err
	}
	u := c.User
	if err := tx.PutUser(index, &u); err != nil {
		return nil, err
	}
	k := c.Keypair
	if err := putNewKeypair(tx, index, &k); err != nil {
		return nil, err
	}
	return &u, nil
}

func checkMembership(tx *state.Txn, domain string, groups []string) error {
	d, err := tx.Domain(domain)
	if err != nil {
		return err
	}
	if d == nil {
		return apierr.Field(apierr.Invalid, "domain", fmt.Sprintf("domain %s does not exist", domain))
	}
	var bad apierr.Fields
	for _, g := range groups {
		grp, err := tx.Group(domain, g)
		if err != nil {
			return err
		}
		if grp == nil {
			bad.Add("groups", "group %s does not exist in domain %s", g, domain)
		}
	}
	return bad.Err()
}

func checkPolicy(tx *state.Txn, name string) error {
	p, err := tx.ResourcePolicy(name)
	if err != nil {
		return err
	}
	if p == nil {
		return apierr.Field(apierr.Invalid, "resource_policy", fmt.Sprintf("resource policy %s does not exist", name))
	}
	return nil
}

// UserUpdate changes the fields that are set. Deactivation makes every
// keypair of the user inactive and revokes the user's login tokens.
type UserUpdate struct {
	Email              string    `json:"email"`
	ModifiedAt         time.Time `json:"modified_at"`
	Username           *string   `json:"username,omitempty"`
	FullName           *string   `json:"full_name,omitempty"`
	PasswordHash       *string   `json:"password_hash,omitempty"`
	Status             *string   `json:"status,omitempty"`
	NeedPasswordChange *bool     `json:"need_password_change,omitempty"`
	Role               *string   `json:"role,omitempty"`
	Groups             *[]string `json:"groups,omitempty"`
	Description        *string   `json:"description,omitempty"`
	// RevokeTokensExcept, when a password changes, ends every login token of
	// the user but this one (the caller's own, by hash; "" ends all).
	RevokeTokensExcept *string `json:"revoke_tokens_except,omitempty"`
}

// MsgType implements Command.
func (UserUpdate) MsgType() MsgType { return MsgUserUpdate }

func applyUserUpdate(tx *state.Txn, index uint64, c *UserUpdate) (any, error) {
	old, err := tx.User(c.Email)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, apierr.New(apierr.NotFound, "no user with email %s", c.Email)
	}
	u := old.Copy()
	if c.Username != nil && *c.Username != u.Username {
		other, err := tx.UserByUsername(*c.Username)
		if err != nil {
			return nil, err
		}
		if other != nil && other.Email != u.Email {
			return nil, apierr.Field(apierr.Conflict, "username", fmt.Sprintf("the username %s is taken by %s", *c.Username, other.Email))
		}
		u.Username = *c.Username
	}
	if c.Groups != nil {
		if err := checkMembership(tx, u.Domain, *c.Groups); err != nil {
			return nil, err
		}
		u.Groups = slices.Clone(*c.Groups)
	}
	setIf(&u.FullName, c.FullName)
	setIf(&u.PasswordHash, c.PasswordHash)
	setIf(&u.Status, c.Status)
	setIf(&u.NeedPasswordChange, c.NeedPasswordChange)
	setIf(&u.Role, c.Role)
	setIf(&u.Description, c.Description)
	u.ModifiedAt = c.ModifiedAt
	if err := keepASuperadmin(tx, old, u); err != nil {
		return nil, err
	}
	if err := tx.PutUser(index, u); err != nil {
		return nil, err
	}
	if u.Status == api.StatusInactive && old.Status != api.StatusInactive {
		if err := deactivateCredentials(tx, index, u.Email); err != nil {
			return nil, err
		}
	}
	if c.RevokeTokensExcept != nil {
		if err := revokeTokens(tx, u.Email, *c.RevokeTokensExcept); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// keepASuperadmin refuses the change that would leave the cluster without
// an active superadmin, since nobody could then administer it.
func keepASuperadmin(tx *state.Txn, old, u *state.User) error {
	wasActiveSuper := old.Role == api.RoleSuperadmin && old.Status == api.StatusActive
	isActiveSuper := u.Role == api.RoleSuperadmin && u.Status == api.StatusActive
	if !wasActiveSuper || isActiveSuper {
		return nil
	}
	others, _, err := tx.Users("", 1, func(o *state.User) bool {
		return o.Email != old.Email && o.Role == api.RoleSuperadmin && o.Status == api.StatusActive
	})
	if err != nil {
		return err
	}
	if len(others) == 0 {
		return apierr.New(apierr.Conflict, "%s is the last active superadmin; make another user superadmin first", old.Email)
	}
	return nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func deactivateCredentials(tx *state.Txn, index uint64, email string) error {
	kps, err := tx.KeypairsOfUser(email)
	if err != nil {
		return err
	}
	for _, k := range kps {
		if !k.IsActive {
			continue
		}
		c := *k
		c.IsActive = false
		if err := tx.PutKeypair(index, &c); err != nil {
			return err
		}
	}
	return revokeTokens(tx, email, "")
}

func revokeTokens(tx *state.Txn, email, keep string) error {
	toks, err := tx.TokensOfUser(email)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.Hash == keep {
			continue
		}
		if err := tx.DeleteToken(t); err != nil {
			return err
		}
	}
	return nil
}
