package api

// Request and response bodies of the administration endpoints (users,
// keypairs, domains, groups), shared by the manager, the client and the CLI.

// UserCreate is the body of POST /v1/users. Empty fields take the manager's
// defaults (role user, status active, domain and resource policy default).
type UserCreate struct {
	Email              string   `json:"email"`
	Username           string   `json:"username"`
	FullName           string   `json:"full_name,omitempty"`
	Password           string   `json:"password"`
	Role               string   `json:"role,omitempty"`
	Domain             string   `json:"domain,omitempty"`
	Groups             []string `json:"groups,omitempty"`
	Status             string   `json:"status,omitempty"`
	NeedPasswordChange bool     `json:"need_password_change,omitempty"`
	ResourcePolicy     string   `json:"resource_policy,omitempty"`
	Description        string   `json:"description,omitempty"`
}

// UserCreated answers POST /v1/users: the user and its first keypair, whose
// SecretKey is sent only in this answer.
type UserCreated struct {
	User    User    `json:"user"`
	Keypair Keypair `json:"keypair"`
}

// UserPatch is the body of PATCH /v1/users/{email}: nil fields are left as
// they are. There is no email field because the email is the user id.
// Groups, when set, replaces the whole list (an empty list removes every
// group).
type UserPatch struct {
	Username           *string   `json:"username,omitempty"`
	FullName           *string   `json:"full_name,omitempty"`
	Password           *string   `json:"password,omitempty"`
	Status             *string   `json:"status,omitempty"`
	NeedPasswordChange *bool     `json:"need_password_change,omitempty"`
	Role               *string   `json:"role,omitempty"`
	Groups             *[]string `json:"groups,omitempty"`
	Description        *string   `json:"description,omitempty"`
}

// KeypairCreate is the body of POST /v1/keypairs. IsAdmin nil lets the
// manager decide from the user's role; RateLimit is requests per 15 minutes,
// 0 meaning no limit.
type KeypairCreate struct {
	User           string `json:"user"`
	ResourcePolicy string `json:"resource_policy,omitempty"`
	IsAdmin        *bool  `json:"is_admin,omitempty"`
	RateLimit      int    `json:"rate_limit,omitempty"`
}

// KeypairPatch is the body of PATCH /v1/keypairs/{access_key}: nil fields
// are left as they are.
type KeypairPatch struct {
	IsActive       *bool   `json:"is_active,omitempty"`
	ResourcePolicy *string `json:"resource_policy,omitempty"`
	RateLimit      *int    `json:"rate_limit,omitempty"`
}

// DomainCreate is the body of POST /v1/domains.
type DomainCreate struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// GroupCreate is the body of POST /v1/domains/{domain}/groups.
type GroupCreate struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// GroupPatch is the body of PATCH /v1/domains/{domain}/groups/{group}: nil
// fields are left as they are.
type GroupPatch struct {
	Description *string `json:"description,omitempty"`
	IsActive    *bool   `json:"is_active,omitempty"`
}

// GroupDetail is one group with the emails of its members, as GET
// /v1/domains/{domain}/groups/{group} and the members endpoint answer.
type GroupDetail struct {
	Group
	Members []string `json:"members"`
}

// GroupMembersChange is the body of POST
// /v1/domains/{domain}/groups/{group}/members.
type GroupMembersChange struct {
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}
