package api

import "time"

// AgentTokenCreate is POST /v1/agents/tokens: a join token for agents,
// which a superadmin can revoke. Uses is how many agents may register
// with it (absent or 0: any number); TTL how long it admits agents, in
// seconds (absent or 0: until revoked); AutoApprove lets the agents that
// join with it take sessions at once (otherwise each waits for POST
// /v1/agents/{id}/approve).
type AgentTokenCreate struct {
	Uses        int   `json:"uses,omitempty"`
	TTL         int64 `json:"ttl,omitempty"`
	AutoApprove bool  `json:"auto_approve,omitempty"`
}

// Agent token states, as the list shows them.
const (
	AgentTokenActive  = "active"
	AgentTokenRevoked = "revoked"
	AgentTokenExpired = "expired"
	AgentTokenUsedUp  = "used"
)

// AgentToken is one agent join token. Token (the secret) is set only in
// the answer to its creation: the managers keep its SHA-256 alone.
type AgentToken struct {
	ID          string     `json:"id"`
	Token       string     `json:"token,omitempty"`
	Status      string     `json:"status"`
	Uses        int        `json:"uses"`
	Used        int        `json:"used"`
	ExpiresAt   *time.Time `json:"expires_at"`
	AutoApprove bool       `json:"auto_approve"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
}
