package httpapi

import (
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// userCreate is the body of POST /v1/users.
type userCreate struct {
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

// userCreated is the answer: the user and its first keypair with the secret.
type userCreated struct {
	User    api.User    `json:"user"`
	Keypair api.Keypair `json:"keypair"`
}

const maxNameLen = 64

var roles = []string{api.RoleSuperadmin, api.RoleAdmin, api.RoleUser, api.RoleMonitor}

func (req *userCreate) validate() error {
	var bad apierr.Fields
	switch {
	case req.Email == "":
		bad.Add("email", "email is required")
	case utf8.RuneCountInString(req.Email) > maxNameLen:
		bad.Add("email", "email must be at most %d characters", maxNameLen)
	case !looksLikeEmail(req.Email):
		bad.Add("email", "email must look like name@example.com")
	}
	switch {
	case strings.TrimSpace(req.Username) == "":
		bad.Add("username", "username is required")
	case utf8.RuneCountInString(req.Username) > maxNameLen:
		bad.Add("username", "username must be at most %d characters", maxNameLen)
	}
	if utf8.RuneCountInString(req.FullName) > maxNameLen {
		bad.Add("full_name", "full_name must be at most %d characters", maxNameLen)
	}
	for _, p := range auth.PasswordProblems(req.Password) {
		bad.Add("password", "%s", p)
	}
	if !slices.Contains(roles, req.Role) {
		bad.Add("role", "role must be one of %s", strings.Join(roles, ", "))
	}
	if req.Status != api.StatusActive && req.Status != api.StatusInactive {
		bad.Add("status", "status must be active or inactive")
	}
	return bad.Err()
}

func looksLikeEmail(s string) bool {
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Address == s && strings.Contains(s[strings.LastIndex(s, "@"):], ".")
}

func (a *API) createUser(c *Call) error {
	var req userCreate
	if err := c.Decode(&req); err != nil {
		return err
	}
	req.Email = normalizeEmail(req.Email)
	setDefault(&req.Role, api.RoleUser)
	setDefault(&req.Status, api.StatusActive)
	setDefault(&req.Domain, "default")
	setDefault(&req.ResourcePolicy, "default")
	if err := req.validate(); err != nil {
		return err
	}
	if req.Role == api.RoleSuperadmin && c.Who.Role() != api.RoleSuperadmin {
		return apierr.Field(apierr.Forbidden, "role", "only a superadmin may create a superadmin")
	}
	if c.Who.Role() != api.RoleSuperadmin && req.Domain != c.Who.User.Domain {
		return apierr.Field(apierr.Forbidden, "domain", fmt.Sprintf("an admin may create users only in their own domain %s", c.Who.User.Domain))
	}
	hash, err := auth.HashPassword(a.rnd, req.Password)
	if err != nil {
		return err
	}
	kp, err := a.newKeypair(req.Email, req.ResourcePolicy, req.Role == api.RoleAdmin || req.Role == api.RoleSuperadmin)
	if err != nil {
		return err
	}
	now := a.now().UTC()
	u := state.User{Email: req.Email, Username: req.Username, FullName: req.FullName, PasswordHash: hash,
		Role: req.Role, Status: req.Status, NeedPasswordChange: req.NeedPasswordChange, Domain: req.Domain,
		Groups: req.Groups, Description: req.Description, CreatedAt: now, ModifiedAt: now}
	if u.Groups == nil {
		u.Groups = []string{}
	}
	if u.Status == api.StatusInactive {
		kp.IsActive = false
	}
	v, err := c.Propose(fsm.UserCreate{User: u, Keypair: *kp})
	if err != nil {
		return err
	}
	out := userCreated{User: a.userView(v.(*state.User), []string{kp.AccessKey}), Keypair: keypairView(kp)}
	out.Keypair.SecretKey = kp.SecretKey
	return c.JSON(http.StatusCreated, out)
}

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func (a *API) newKeypair(user, policy string, isAdmin bool) (*state.Keypair, error) {
	ak, err := auth.NewAccessKey(a.rnd)
	if err != nil {
		return nil, err
	}
	sk, err := auth.NewSecretKey(a.rnd)
	if err != nil {
		return nil, err
	}
	return &state.Keypair{AccessKey: ak, SecretKey: sk, User: user, IsActive: true, IsAdmin: isAdmin,
		ResourcePolicy: policy, CreatedAt: a.now().UTC()}, nil
}

func (a *API) getUser(c *Call) error {
	email := normalizeEmail(c.R.PathValue("email"))
	tx := a.cluster.State().Read()
	u, err := tx.User(email)
	if err != nil {
		return err
	}
	if u == nil || !a.canSeeUser(c.Who, u) {
		return apierr.New(apierr.NotFound, "no user with email %s", email)
	}
	kps, err := tx.KeypairsOfUser(u.Email)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(kps))
	for _, k := range kps {
		keys = append(keys, k.AccessKey)
	}
	return c.JSON(http.StatusOK, a.userView(u, keys))
}

func (a *API) canSeeUser(who *Identity, u *state.User) bool {
	return who.Role() == api.RoleSuperadmin || who.User.Domain == u.Domain
}

func (a *API) listUsers(c *Call) error {
	q := c.R.URL.Query()
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	status := q.Get("status")
	if status != "" && status != api.StatusActive && status != api.StatusInactive {
		return apierr.Field(apierr.Invalid, "status", "status must be active or inactive")
	}
	emailSub := strings.ToLower(q.Get("email"))
	nameSub := strings.ToLower(q.Get("username"))
	group := q.Get("group")
	keep := func(u *state.User) bool {
		return a.canSeeUser(c.Who, u) &&
			(status == "" || u.Status == status) &&
			strings.Contains(u.Email, emailSub) &&
			strings.Contains(strings.ToLower(u.Username), nameSub) &&
			(group == "" || slices.Contains(u.Groups, group))
	}
	users, next, err := a.cluster.State().Read().Users(q.Get("cursor"), limit, keep)
	if err != nil {
		return err
	}
	out := api.List[api.User]{Items: make([]api.User, 0, len(users)), NextCursor: next}
	for _, u := range users {
		out.Items = append(out.Items, a.userView(u, nil))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) deleteUser(c *Call) error {
	c.W.Header().Set("Allow", "GET, PATCH")
	return apierr.New(apierr.MethodNotAllowed, "users are never deleted; deactivate %s with PATCH {\"status\":\"inactive\"}", c.R.PathValue("email"))
}

// listLimit parses ?limit= (default 100, at most 1000).
func listLimit(s string) (int, error) {
	if s == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, apierr.Field(apierr.Invalid, "limit", "limit must be a whole number from 1 to 1000")
	}
	return n, nil
}

func (a *API) userView(u *state.User, keypairs []string) api.User {
	return api.User{Email: u.Email, Username: u.Username, FullName: u.FullName, Role: u.Role, Status: u.Status,
		NeedPasswordChange: u.NeedPasswordChange, Domain: u.Domain, Groups: slices.Clone(u.Groups),
		Description: u.Description, Keypairs: keypairs, CreatedAt: u.CreatedAt, ModifiedAt: u.ModifiedAt}
}

func keypairView(k *state.Keypair) api.Keypair {
	return api.Keypair{AccessKey: k.AccessKey, User: k.User, IsActive: k.IsActive, IsAdmin: k.IsAdmin,
		ResourcePolicy: k.ResourcePolicy, RateLimit: k.RateLimit, CreatedAt: k.CreatedAt, LastUsed: k.LastUsed}
}
