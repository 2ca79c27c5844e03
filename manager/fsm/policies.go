package fsm

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/slots"
)

// DefaultPolicy is the policy created at first start. New keypairs land on
// it when no other is named, so it can never be deleted.
const DefaultPolicy = "default"

// PolicyCreate creates a resource policy under a new name.
type PolicyCreate struct {
	Policy state.ResourcePolicy `json:"policy"`
}

// MsgType implements Command.
func (PolicyCreate) MsgType() MsgType { return MsgPolicyCreate }

func applyPolicyCreate(tx *state.Txn, index uint64, c *PolicyCreate) (any, error) {
	old, err := tx.ResourcePolicy(c.Policy.Name)
	if err != nil {
		return nil, err
	}
	if old != nil {
		return nil, apierr.Field(apierr.Conflict, "name", fmt.Sprintf("a resource policy named %s already exists", c.Policy.Name))
	}
	p := c.Policy
	p.Meta = state.Meta{}
	p.MaxDisconnectEffective = nil // a view's, never stored
	if err := tx.PutResourcePolicy(index, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Nullable is an update to a field that may be null. In an update entry a
// nil *Nullable leaves the field as it is; a Nullable whose Value is nil
// sets it to null (unlimited).
type Nullable[T any] struct {
	Value *T `json:"value"`
}

// PolicyUpdate changes the fields that are set, against the policy as it is
// when the entry is applied, so two updates of different fields both hold.
// The name never changes.
type PolicyUpdate struct {
	Name       string    `json:"name"`
	ModifiedAt time.Time `json:"modified_at"`
	// Slots changes only the slots it names; a nil amount makes the slot
	// unlimited.
	Slots                   map[slots.Name]*int64 `json:"slots,omitempty"`
	MaxContainersPerSession *int                  `json:"max_containers_per_session,omitempty"`
	IdleTimeout             *int64                `json:"idle_timeout,omitempty"`
	MaxConcurrentSessions   *Nullable[int]        `json:"max_concurrent_sessions,omitempty"`
	MaxSessionLifetime      *Nullable[int64]      `json:"max_session_lifetime,omitempty"`
	AllowedVfolderHosts     *[]string             `json:"allowed_vfolder_hosts,omitempty"`
	MaxVfolderSize          *Nullable[int64]      `json:"max_vfolder_size,omitempty"`
	MaxVfolderCount         *int                  `json:"max_vfolder_count,omitempty"`
	AllowRoot               *bool                 `json:"allow_root,omitempty"`
	AllowedImages           *[]string             `json:"allowed_images,omitempty"`
	AllowEgress             *bool                 `json:"allow_egress,omitempty"`
	MaxDisconnect           *Nullable[int64]      `json:"max_disconnect,omitempty"`
}

// MsgType implements Command.
func (PolicyUpdate) MsgType() MsgType { return MsgPolicyUpdate }

func applyPolicyUpdate(tx *state.Txn, index uint64, c *PolicyUpdate) (any, error) {
	old, err := tx.ResourcePolicy(c.Name)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, apierr.New(apierr.NotFound, "no resource policy named %s", c.Name)
	}
	p := copyPolicy(old)
	for n, v := range c.Slots {
		if v == nil {
			delete(p.TotalResourceSlots, n)
		} else {
			p.TotalResourceSlots[n] = *v
		}
	}
	setPresent(&p.MaxContainersPerSession, c.MaxContainersPerSession)
	setPresent(&p.IdleTimeout, c.IdleTimeout)
	setNullable(&p.MaxConcurrentSessions, c.MaxConcurrentSessions)
	setNullable(&p.MaxSessionLifetime, c.MaxSessionLifetime)
	if c.AllowedVfolderHosts != nil {
		p.AllowedVfolderHosts = slices.Clone(*c.AllowedVfolderHosts)
	}
	setNullable(&p.MaxVfolderSize, c.MaxVfolderSize)
	setNullable(&p.MaxDisconnect, c.MaxDisconnect)
	setPresent(&p.MaxVfolderCount, c.MaxVfolderCount)
	setPresent(&p.AllowRoot, c.AllowRoot)
	if c.AllowedImages != nil {
		p.AllowedImages = slices.Clone(*c.AllowedImages)
	}
	if c.AllowEgress != nil {
		v := *c.AllowEgress
		p.AllowEgress = &v
	}
	p.ModifiedAt = c.ModifiedAt
	if err := tx.PutResourcePolicy(index, p); err != nil {
		return nil, err
	}
	return p, nil
}

func setPresent[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func setNullable[T any](dst **T, v *Nullable[T]) {
	if v == nil {
		return
	}
	if v.Value == nil {
		*dst = nil
		return
	}
	x := *v.Value
	*dst = &x
}

// copyPolicy returns a deep copy: objects read from the store are shared
// and must not change.
func copyPolicy(p *state.ResourcePolicy) *state.ResourcePolicy {
	c := *p
	c.TotalResourceSlots = slots.Limits{}
	for n, v := range p.TotalResourceSlots {
		c.TotalResourceSlots[n] = v
	}
	c.AllowedVfolderHosts = slices.Clone(p.AllowedVfolderHosts)
	c.AllowedImages = slices.Clone(p.AllowedImages)
	c.MaxConcurrentSessions = clonePtr(p.MaxConcurrentSessions)
	c.MaxSessionLifetime = clonePtr(p.MaxSessionLifetime)
	c.MaxVfolderSize = clonePtr(p.MaxVfolderSize)
	c.AllowEgress = clonePtr(p.AllowEgress)
	c.MaxDisconnect = clonePtr(p.MaxDisconnect)
	return &c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// PolicyDelete removes a policy no keypair refers to.
type PolicyDelete struct {
	Name string `json:"name"`
}

// MsgType implements Command.
func (PolicyDelete) MsgType() MsgType { return MsgPolicyDelete }

func applyPolicyDelete(tx *state.Txn, _ uint64, c *PolicyDelete) (any, error) {
	p, err := tx.ResourcePolicy(c.Name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, apierr.New(apierr.NotFound, "no resource policy named %s", c.Name)
	}
	if p.Name == DefaultPolicy {
		return nil, apierr.New(apierr.Conflict, "the %s policy cannot be deleted: new keypairs get it when no other policy is named; change its limits instead", DefaultPolicy)
	}
	// Every keypair counts, inactive ones and those of inactive users
	// included: reactivating them must not leave them without a policy.
	kps, err := tx.KeypairsOnPolicy(p.Name)
	if err != nil {
		return nil, err
	}
	if len(kps) > 0 {
		return nil, policyInUse(p.Name, kps)
	}
	if err := tx.DeleteResourcePolicy(p); err != nil {
		return nil, err
	}
	return p, nil
}

// policyInUse says how many keypairs of how many users hold the policy and
// names the first users, so an admin knows whom to move.
func policyInUse(name string, kps []*state.Keypair) error {
	seen := map[string]bool{}
	var users []string
	for _, k := range kps {
		if !seen[k.User] {
			seen[k.User] = true
			users = append(users, k.User)
		}
	}
	slices.Sort(users)
	const named = 3
	who := strings.Join(users[:min(named, len(users))], ", ")
	if len(users) > named {
		who += fmt.Sprintf(" and %d more", len(users)-named)
	}
	holds := "hold"
	if len(kps) == 1 {
		holds = "holds"
	}
	return apierr.New(apierr.Conflict,
		"resource policy %s is in use: %s of %s %s it, inactive ones included (%s); move them to another policy first",
		name, plural(len(kps), "keypair"), plural(len(users), "user"), holds, who)
}

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
