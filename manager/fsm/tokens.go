package fsm

import (
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
)

// TokenCreate stores a login token made by the login handler.
type TokenCreate struct {
	Token state.Token `json:"token"`
}

// MsgType implements Command.
func (TokenCreate) MsgType() MsgType { return MsgTokenCreate }

func applyTokenCreate(tx *state.Txn, index uint64, c *TokenCreate) (any, error) {
	// The user may have been deactivated between the password check and now.
	u, err := tx.User(c.Token.User)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, apierr.New(apierr.Unauthorized, "wrong email or password")
	}
	if u.Status != "active" {
		return nil, apierr.New(apierr.Forbidden, "user %s is inactive; an administrator must reactivate it", u.Email)
	}
	t := c.Token
	return nil, tx.PutToken(index, &t)
}

// TokenDelete revokes one token (logout).
type TokenDelete struct {
	Hash string `json:"hash"`
}

// MsgType implements Command.
func (TokenDelete) MsgType() MsgType { return MsgTokenDelete }

func applyTokenDelete(tx *state.Txn, _ uint64, c *TokenDelete) (any, error) {
	t, err := tx.Token(c.Hash)
	if err != nil || t == nil {
		return nil, err
	}
	return nil, tx.DeleteToken(t)
}

// TokensExpire removes every token that expired before Now (the leader's
// clock when it proposed the entry).
type TokensExpire struct {
	Now time.Time `json:"now"`
}

// MsgType implements Command.
func (TokensExpire) MsgType() MsgType { return MsgTokensExpire }

func applyTokensExpire(tx *state.Txn, _ uint64, c *TokensExpire) (any, error) {
	all, err := tx.Tokens()
	if err != nil {
		return nil, err
	}
	removed := 0
	for _, t := range all {
		if t.ExpiresAt.After(c.Now) {
			continue
		}
		if err := tx.DeleteToken(t); err != nil {
			return nil, err
		}
		removed++
	}
	return removed, nil
}
