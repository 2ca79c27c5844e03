package state

import (
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-cluster/berth/shared/api"
)

// ResourcePolicy bounds the keypairs that refer to it. Its fields are the
// wire fields; the name is the primary key and never changes.
type ResourcePolicy struct {
	api.ResourcePolicy
	Meta
}

func (p *ResourcePolicy) id() string { return p.Name }

// DisconnectGrace is how long a session of this policy is kept while its
// agent is disconnected: the smaller of the policy's max_disconnect and the
// managers' grace. A nil policy (a session whose keypair is gone) gets the
// managers' grace.
func (p *ResourcePolicy) DisconnectGrace(managers time.Duration) time.Duration {
	if p == nil || p.MaxDisconnect == nil {
		return managers
	}
	return min(managers, time.Duration(*p.MaxDisconnect)*time.Second)
}

const tablePolicies = "resource_policies"

func resourcePoliciesTable() Table {
	return Table{Name: tablePolicies, ID: 3, New: func() any { return new(ResourcePolicy) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "Name", true, false),
		}}}
}

// ResourcePolicy returns the named policy or nil.
func (t *Txn) ResourcePolicy(name string) (*ResourcePolicy, error) {
	return first[ResourcePolicy](t, tablePolicies, "id", name)
}

// ResourcePolicies lists every policy by name.
func (t *Txn) ResourcePolicies() ([]*ResourcePolicy, error) {
	return list[ResourcePolicy](t, tablePolicies, "id")
}

// PutResourcePolicy inserts or replaces a policy at the Raft index.
func (t *Txn) PutResourcePolicy(index uint64, p *ResourcePolicy) error {
	return t.put(tablePolicies, index, p)
}

// DeleteResourcePolicy removes a policy; the FSM checks first that no
// keypair refers to it.
func (t *Txn) DeleteResourcePolicy(p *ResourcePolicy) error { return t.remove(tablePolicies, p) }
