package fsm

import (
	"fmt"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
)

// KeypairPut creates a keypair for an existing user on an existing policy.
type KeypairPut struct {
	Keypair state.Keypair `json:"keypair"`
}

// MsgType implements Command.
func (KeypairPut) MsgType() MsgType { return MsgKeypairPut }

func applyKeypairPut(tx *state.Txn, index uint64, c *KeypairPut) (any, error) {
	u, err := tx.User(c.Keypair.User)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, apierr.Field(apierr.Invalid, "user", fmt.Sprintf("no user with email %s", c.Keypair.User))
	}
	if err := checkPolicy(tx, c.Keypair.ResourcePolicy); err != nil {
		return nil, err
	}
	k := c.Keypair
	if err := putNewKeypair(tx, index, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

func putNewKeypair(tx *state.Txn, index uint64, k *state.Keypair) error {
	old, err := tx.Keypair(k.AccessKey)
	if err != nil {
		return err
	}
	if old != nil {
		// Access keys are 18 random characters; a collision means the
		// proposer reused one, which must not overwrite someone's credential.
		return apierr.New(apierr.Conflict, "access key %s already exists", k.AccessKey)
	}
	return tx.PutKeypair(index, k)
}
