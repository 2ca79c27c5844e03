package state

import (
	"time"

	"github.com/hashicorp/go-memdb"
)

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

func keypairsTable() Table {
	return Table{Name: tableKeypairs, ID: 5, New: func() any { return new(Keypair) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id":   stringIndex("id", "AccessKey", true, false),
			"user": stringIndex("user", "User", false, false),
			// No index by policy: it would cost every keypair about 400
			// bytes for the rare deletion of a policy (KeypairsOnPolicy).
		}}}
}

// Keypair returns the keypair with the access key or nil.
func (t *Txn) Keypair(accessKey string) (*Keypair, error) {
	return first[Keypair](t, tableKeypairs, "id", accessKey)
}

// KeypairsOfUser lists a user's keypairs by access key.
func (t *Txn) KeypairsOfUser(email string) ([]*Keypair, error) {
	return list[Keypair](t, tableKeypairs, "user", email)
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

// Keypairs pages through keypairs in access-key order.
func (t *Txn) Keypairs(cursor string, limit int, keep func(*Keypair) bool) ([]*Keypair, string, error) {
	return after(t, tableKeypairs, cursor, limit, keep)
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
	return each(t, tableKeypairs, keep, f)
}

// CountKeypairs is how many keypairs exist.
func (t *Txn) CountKeypairs() (int, error) {
	n := 0
	err := t.EachKeypair(nil, func(*Keypair) error { n++; return nil })
	return n, err
}
