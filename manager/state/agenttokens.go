package state

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
)

// AgentToken is a join token issued to admit agents (berth agent token
// create). Only the SHA-256 of the token is kept: the token itself is shown
// once, to the superadmin who made it, so a snapshot or backup that leaks
// does not admit anyone. Whether one more agent may join with it (uses,
// expiry, revocation) is decided inside Apply when the agent registers.
type AgentToken struct {
	ID   string `json:"id"`
	Hash string `json:"hash"`
	// Uses is how many agents may register with the token (0: any number);
	// Used how many have.
	Uses int `json:"uses"`
	Used int `json:"used"`
	// ExpiresAt is when the token stops admitting agents; nil: never.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// AutoApprove: agents that join with the token may be scheduled at
	// once; without it they wait for berth agent approve.
	AutoApprove bool       `json:"auto_approve"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	Meta
}

func (k *AgentToken) id() string { return k.ID }

// Refusal says why the token admits no agent at the time at, or "".
func (k *AgentToken) Refusal(at time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return "this agent token was revoked at " + k.RevokedAt.UTC().Format(time.RFC3339)
	case k.ExpiresAt != nil && !at.Before(*k.ExpiresAt):
		return "this agent token expired at " + k.ExpiresAt.UTC().Format(time.RFC3339)
	case k.Uses > 0 && k.Used >= k.Uses:
		return fmt.Sprintf("this agent token is used up (%d of %d registrations)", k.Used, k.Uses)
	}
	return ""
}

const tableAgentTokens = "agent_tokens"

func agentTokensTable() Table {
	return Table{Name: tableAgentTokens, ID: 11, New: func() any { return new(AgentToken) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id":   stringIndex("id", "ID", true, false),
			"hash": stringIndex("hash", "Hash", true, false),
		}}}
}

// AgentToken returns the agent token with the id or nil.
func (t *Txn) AgentToken(id string) (*AgentToken, error) {
	return first[AgentToken](t, tableAgentTokens, "id", id)
}

// AgentTokenByHash returns the agent token whose SHA-256 is hash, or nil.
func (t *Txn) AgentTokenByHash(hash string) (*AgentToken, error) {
	return first[AgentToken](t, tableAgentTokens, "hash", hash)
}

// AgentTokens lists every agent token by id.
func (t *Txn) AgentTokens() ([]*AgentToken, error) {
	return list[AgentToken](t, tableAgentTokens, "id")
}

// PutAgentToken inserts or replaces an agent token at the Raft index.
func (t *Txn) PutAgentToken(index uint64, k *AgentToken) error {
	return t.put(tableAgentTokens, index, k)
}
