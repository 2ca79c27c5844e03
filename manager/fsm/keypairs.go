package fsm

import (
	"fmt"
	"maps"
	"slices"
	"time"

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

// KeypairUpdate changes the fields that are set.
type KeypairUpdate struct {
	AccessKey      string  `json:"access_key"`
	IsActive       *bool   `json:"is_active,omitempty"`
	ResourcePolicy *string `json:"resource_policy,omitempty"`
	RateLimit      *int    `json:"rate_limit,omitempty"`
}

// MsgType implements Command.
func (KeypairUpdate) MsgType() MsgType { return MsgKeypairUpdate }

func applyKeypairUpdate(tx *state.Txn, index uint64, c *KeypairUpdate) (any, error) {
	old, err := tx.Keypair(c.AccessKey)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, apierr.New(apierr.NotFound, "no keypair with access key %s", c.AccessKey)
	}
	if c.ResourcePolicy != nil {
		if err := checkPolicy(tx, *c.ResourcePolicy); err != nil {
			return nil, err
		}
	}
	k := *old
	setIf(&k.IsActive, c.IsActive)
	setIf(&k.ResourcePolicy, c.ResourcePolicy)
	setIf(&k.RateLimit, c.RateLimit)
	if err := tx.PutKeypair(index, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// KeypairDelete removes a keypair.
type KeypairDelete struct {
	AccessKey string `json:"access_key"`
}

// MsgType implements Command.
func (KeypairDelete) MsgType() MsgType { return MsgKeypairDelete }

func applyKeypairDelete(tx *state.Txn, _ uint64, c *KeypairDelete) (any, error) {
	k, err := tx.Keypair(c.AccessKey)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, apierr.New(apierr.NotFound, "no keypair with access key %s", c.AccessKey)
	}
	// Sessions (a later part of the system) will make a keypair that owns
	// unfinished sessions undeletable here.
	return nil, tx.DeleteKeypair(k)
}

// KeypairsTouch records when keypairs were last used. The leader gathers
// uses in memory and writes them in one entry now and then, so signed
// requests cost no Raft round trip each.
type KeypairsTouch struct {
	LastUsed map[string]time.Time `json:"last_used"`
}

// MsgType implements Command.
func (KeypairsTouch) MsgType() MsgType { return MsgKeypairsTouch }

func applyKeypairsTouch(tx *state.Txn, index uint64, c *KeypairsTouch) (any, error) {
	// Sorted so the order of writes (and so the state) does not depend on
	// Go's map iteration.
	for _, ak := range slices.Sorted(maps.Keys(c.LastUsed)) {
		k, err := tx.Keypair(ak)
		if err != nil {
			return nil, err
		}
		at := c.LastUsed[ak]
		if k == nil || (k.LastUsed != nil && !at.After(*k.LastUsed)) {
			continue // deleted since, or an older report
		}
		n := *k
		n.LastUsed = &at
		if err := tx.PutKeypair(index, &n); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
