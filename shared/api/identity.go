package api

import (
	"time"

	"github.com/berth-cluster/berth/shared/slots"
)

// Roles, from most to least privileged. monitor reads admin views only.
const (
	RoleSuperadmin = "superadmin"
	RoleAdmin      = "admin"
	RoleUser       = "user"
	RoleMonitor    = "monitor"
)

// User statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// List is the envelope of every list response.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// User is a person. Email is the user id and never changes.
type User struct {
	Email              string    `json:"email"`
	Username           string    `json:"username"`
	FullName           string    `json:"full_name"`
	Role               string    `json:"role"`
	Status             string    `json:"status"`
	NeedPasswordChange bool      `json:"need_password_change"`
	Domain             string    `json:"domain"`
	Groups             []string  `json:"groups"`
	Description        string    `json:"description"`
	Keypairs           []string  `json:"keypairs,omitempty"`
	CreatedAt          time.Time `json:"created_at"`
	ModifiedAt         time.Time `json:"modified_at"`
}

// Keypair is a programmatic credential. SecretKey is only ever sent in the
// response that created it.
type Keypair struct {
	AccessKey       string     `json:"access_key"`
	SecretKey       string     `json:"secret_key,omitempty"`
	User            string     `json:"user"`
	IsActive        bool       `json:"is_active"`
	IsAdmin         bool       `json:"is_admin"`
	ResourcePolicy  string     `json:"resource_policy"`
	RateLimit       int        `json:"rate_limit"`
	ConcurrencyUsed int        `json:"concurrency_used"`
	CreatedAt       time.Time  `json:"created_at"`
	LastUsed        *time.Time `json:"last_used"`
}

// ResourcePolicy bounds what the keypairs on it may use. Nil pointers are
// unlimited / none.
type ResourcePolicy struct {
	Name                    string       `json:"name"`
	TotalResourceSlots      slots.Limits `json:"total_resource_slots"`
	MaxContainersPerSession int          `json:"max_containers_per_session"`
	IdleTimeout             int64        `json:"idle_timeout"`
	MaxConcurrentSessions   *int         `json:"max_concurrent_sessions"`
	MaxSessionLifetime      *int64       `json:"max_session_lifetime"`
	AllowedVfolderHosts     []string     `json:"allowed_vfolder_hosts"`
	MaxVfolderSize          *int64       `json:"max_vfolder_size"`
	MaxVfolderCount         int          `json:"max_vfolder_count"`
	CreatedAt               time.Time    `json:"created_at"`
	ModifiedAt              time.Time    `json:"modified_at"`
	// AllowRoot lets sessions of the policy's keypairs ask to run as root
	// in their containers (run_as_root); without it they run as the
	// agents' unprivileged container user.
	AllowRoot bool `json:"allow_root"`
	// AllowedImages are glob patterns over an image reference's full form
	// (docker.io/library/python:3.12; "*" matches any run of characters,
	// "/" included, "?" one); a session's image must match one. Empty: any.
	AllowedImages []string `json:"allowed_images"`
	// AllowEgress lets the policy's sessions reach beyond their node (when
	// the agent's -session-egress does too). Stored nil reads as true,
	// which policies made before the field were; views always carry it.
	AllowEgress *bool `json:"allow_egress,omitempty"`
	// MaxDisconnect shortens, for the policy's sessions, how long a
	// disconnected agent keeps them (seconds; nil: the managers'
	// -disconnect-grace). The smaller of the two applies.
	MaxDisconnect *int64 `json:"max_disconnect"`
	// MaxDisconnectEffective is what applies, in seconds: the smaller of
	// MaxDisconnect and the answering manager's -disconnect-grace. Views
	// only; never stored or accepted.
	MaxDisconnectEffective *int64 `json:"max_disconnect_effective,omitempty"`
}

// EgressAllowed reads AllowEgress with its default.
func (p ResourcePolicy) EgressAllowed() bool { return p.AllowEgress == nil || *p.AllowEgress }

// Domain is the top level of the group hierarchy.
type Domain struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	IsActive    bool      `json:"is_active"`
	CreatedAt   time.Time `json:"created_at"`
}

// Group belongs to one domain; users of that domain may be members.
type Group struct {
	Name        string    `json:"name"`
	Domain      string    `json:"domain"`
	Description string    `json:"description"`
	IsActive    bool      `json:"is_active"`
	CreatedAt   time.Time `json:"created_at"`
}

// LoginRequest is the body of POST /v1/auth/login.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// LoginResponse carries a bearer token that expires at ExpiresAt. A browser
// that uses the session cookie instead sends CSRFToken in X-Berth-CSRF with
// every request that changes something.
type LoginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	CSRFToken string    `json:"csrf_token"`
	User      User      `json:"user"`
}

// WhoAmI describes the caller.
type WhoAmI struct {
	User      User   `json:"user"`
	AccessKey string `json:"access_key,omitempty"`
}

// PasswordChange is the body of POST /v1/auth/password.
type PasswordChange struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}
