package state

import "time"

// Keypair is a programmatic credential. The secret is kept because HMAC
// verification needs it; it leaves the manager only in the create response.
type Keypair struct {
	AccessKey      string     `json:"access_key"`
	SecretKey      string     `json:"secret_key"`
	User           string     `json:"user"`
	IsActive       bool       `json:"is_active"`
	IsAdmin        bool       `json:"is_admin"`
	ResourcePolicy string     `json:"resource_policy"`
	RateLimit      int        `json:"rate_limit"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsed       *time.Time `json:"last_used"`
	Meta
}

func (k *Keypair) id() string { return k.AccessKey }

const tableKeypairs = "keypairs"

// The keypairs table keeps its records and indexes in B-trees (trees.go):
// by access key and by user. No index by policy: a policy is deleted
// rarely, and KeypairsOnPolicy reads the table then.
func keypairsTable() Table {
	return Table{Name: tableKeypairs, ID: 5, New: func() any { return new(Keypair) }}
}

// Keypair returns the keypair with the access key or nil.
func (t *Txn) Keypair(accessKey string) (*Keypair, error) { return t.tr.keypair(accessKey), nil }

// KeypairsOfUser lists a user's keypairs by access key.
func (t *Txn) KeypairsOfUser(email string) ([]*Keypair, error) {
	var out []*Keypair
	ascend(t, t.tr.keypairsOfUser, true, &Keypair{User: email}, func(k *Keypair) bool {
		if k.User != email {
			return false
		}
		out = append(out, k)
		return true
	})
	return out, nil
}

// KeypairsOnPolicy lists the keypairs that refer to a resource policy.
func (t *Txn) KeypairsOnPolicy(policy string) ([]*Keypair, error) {
	var out []*Keypair
	err := t.EachKeypair(func(k *Keypair) bool { return k.ResourcePolicy == policy }, func(k *Keypair) error {
		out = append(out, k)
		return nil
	})
	return out, err
}

// Keypairs pages through keypairs in access-key order from cursor (the
// first access key of the page), at most limit (<= 0: no bound); next is
// the cursor of the following page, "" at the end.
func (t *Txn) Keypairs(cursor string, limit int, keep func(*Keypair) bool) ([]*Keypair, string, error) {
	var out []*Keypair
	next := ""
	ascend(t, t.tr.keypairs, true, &Keypair{AccessKey: cursor}, func(k *Keypair) bool {
		if keep != nil && !keep(k) {
			return true
		}
		if limit > 0 && len(out) == limit {
			next = k.AccessKey
			return false
		}
		out = append(out, k)
		return true
	})
	return out, next, nil
}

// PutKeypair inserts or replaces a keypair at the Raft index.
func (t *Txn) PutKeypair(index uint64, k *Keypair) error {
	t.compactKeypair(k)
	return t.put(tableKeypairs, index, k)
}

// DeleteKeypair removes a keypair.
func (t *Txn) DeleteKeypair(k *Keypair) error { return t.remove(tableKeypairs, k) }

// EachKeypair calls f for every keypair keep accepts, in access-key order.
func (t *Txn) EachKeypair(keep func(*Keypair) bool, f func(*Keypair) error) error {
	var err error
	ascend(t, t.tr.keypairs, false, nil, func(k *Keypair) bool {
		if keep == nil || keep(k) {
			err = f(k)
		}
		return err == nil
	})
	return err
}

// CountKeypairs is how many keypairs exist.
func (t *Txn) CountKeypairs() (int, error) { return t.tr.keypairs.Len(), nil }
