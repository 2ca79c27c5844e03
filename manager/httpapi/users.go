package httpapi

import (
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

const maxNameLen = 64

var roles = []string{api.RoleSuperadmin, api.RoleAdmin, api.RoleUser, api.RoleMonitor}

func validateUserCreate(req *api.UserCreate) error {
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
	var req api.UserCreate
	if err := c.Decode(&req); err != nil {
		return err
	}
	req.Email = normalizeEmail(req.Email)
	setDefault(&req.Role, api.RoleUser)
	setDefault(&req.Status, api.StatusActive)
	setDefault(&req.Domain, "default")
	setDefault(&req.ResourcePolicy, "default")
	if err := validateUserCreate(&req); err != nil {
		return err
	}
	if req.Role == api.RoleSuperadmin && c.Who.Role() != api.RoleSuperadmin {
		return apierr.Field(apierr.Forbidden, "role", "only a superadmin may create a superadmin")
	}
	if !canSeeDomain(c.Who, req.Domain) {
		return apierr.Field(apierr.Forbidden, "domain", fmt.Sprintf("an admin may create users only in their own domain %s", c.Who.User.Domain))
	}
	hash, err := a.cfg.PasswordCost.Hash(a.rnd, req.Password)
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
	created, err := propose[*state.User](c, fsm.UserCreate{User: u, Keypair: *kp})
	if err != nil {
		return err
	}
	kv, err := keypairView(a.cluster.Read(), kp)
	if err != nil {
		return err
	}
	out := api.UserCreated{User: a.userView(created, []string{kp.AccessKey}), Keypair: kv}
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
	tx := a.cluster.Read()
	u, err := tx.User(email)
	if err != nil {
		return err
	}
	if u == nil || !canSeeUser(c.Who, u) {
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

// userFilter reads the list filters shared by GET /v1/users and the CSV
// export: ?status=, substrings of ?email= and ?username= (any case), ?group=.
func (a *API) userFilter(c *Call) (func(*state.User) bool, error) {
	q := c.R.URL.Query()
	status := q.Get("status")
	if status != "" && status != api.StatusActive && status != api.StatusInactive {
		return nil, apierr.Field(apierr.Invalid, "status", "status must be active or inactive")
	}
	emailSub := strings.ToLower(q.Get("email"))
	nameSub := strings.ToLower(q.Get("username"))
	group := q.Get("group")
	return func(u *state.User) bool {
		return canSeeUser(c.Who, u) &&
			(status == "" || u.Status == status) &&
			strings.Contains(u.Email, emailSub) &&
			strings.Contains(strings.ToLower(u.Username), nameSub) &&
			(group == "" || slices.Contains(u.Groups, group))
	}, nil
}

func (a *API) listUsers(c *Call) error {
	q := c.R.URL.Query()
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	keep, err := a.userFilter(c)
	if err != nil {
		return err
	}
	users, next, err := a.cluster.Read().Users(q.Get("cursor"), limit, keep)
	if err != nil {
		return err
	}
	out := api.List[api.User]{Items: make([]api.User, 0, len(users)), NextCursor: next}
	for _, u := range users {
		out.Items = append(out.Items, a.userView(u, nil))
	}
	return c.JSON(http.StatusOK, out)
}

var userColumns = []string{"email", "username", "full_name", "role", "status", "domain", "groups", "need_password_change", "created_at"}

func (a *API) exportUsers(c *Call) error {
	name, err := exportFilename(c.R.URL.Query().Get("filename"), "users.csv")
	if err != nil {
		return err
	}
	keep, err := a.userFilter(c)
	if err != nil {
		return err
	}
	// One read transaction: the file is one consistent version of the table
	// however long the download takes.
	tx := a.cluster.Read()
	return c.csvExport(name, userColumns, func(row func([]string) error) error {
		return tx.EachUser(keep, func(u *state.User) error {
			return row([]string{u.Email, u.Username, u.FullName, u.Role, u.Status, u.Domain,
				strings.Join(u.Groups, ";"), strconv.FormatBool(u.NeedPasswordChange), csvTime(u.CreatedAt)})
		})
	})
}

// userPatch is the body of PATCH /v1/users/{email}; Email is there only to
// refuse it with a clear reason.
type userPatch struct {
	Email *string `json:"email,omitempty"`
	api.UserPatch
}

func (p *userPatch) validate() error {
	var bad apierr.Fields
	if p.Email != nil {
		bad.Add("email", "the email is the user id and cannot be changed")
	}
	if p.Username != nil {
		switch {
		case strings.TrimSpace(*p.Username) == "":
			bad.Add("username", "username must not be empty")
		case utf8.RuneCountInString(*p.Username) > maxNameLen:
			bad.Add("username", "username must be at most %d characters", maxNameLen)
		}
	}
	if p.FullName != nil && utf8.RuneCountInString(*p.FullName) > maxNameLen {
		bad.Add("full_name", "full_name must be at most %d characters", maxNameLen)
	}
	if p.Password != nil {
		for _, reason := range auth.PasswordProblems(*p.Password) {
			bad.Add("password", "%s", reason)
		}
	}
	if p.Status != nil && *p.Status != api.StatusActive && *p.Status != api.StatusInactive {
		bad.Add("status", "status must be active or inactive")
	}
	if p.Role != nil && !slices.Contains(roles, *p.Role) {
		bad.Add("role", "role must be one of %s", strings.Join(roles, ", "))
	}
	return bad.Err()
}

func (a *API) updateUser(c *Call) error {
	email := normalizeEmail(c.R.PathValue("email"))
	var p userPatch
	if err := c.Decode(&p); err != nil {
		return err
	}
	if err := p.validate(); err != nil {
		return err
	}
	u, err := a.cluster.Read().User(email)
	if err != nil {
		return err
	}
	if u == nil || !canSeeUser(c.Who, u) {
		return apierr.New(apierr.NotFound, "no user with email %s", email)
	}
	if !canManageUser(c.Who, u) {
		return apierr.New(apierr.Forbidden, "only an admin may change user %s", email)
	}
	if p.Role != nil && *p.Role == api.RoleSuperadmin && c.Who.Role() != api.RoleSuperadmin {
		return apierr.Field(apierr.Forbidden, "role", "only a superadmin may grant the superadmin role")
	}
	if u.Email == c.Who.User.Email && p.Status != nil && *p.Status == api.StatusInactive {
		return apierr.Field(apierr.Invalid, "status", "you cannot deactivate your own account; ask another administrator")
	}
	cmd := fsm.UserUpdate{Email: email, ModifiedAt: a.now().UTC(), Username: p.Username, FullName: p.FullName,
		Status: p.Status, NeedPasswordChange: p.NeedPasswordChange, Role: p.Role, Groups: p.Groups, Description: p.Description}
	if p.Password != nil {
		hash, err := a.cfg.PasswordCost.Hash(a.rnd, *p.Password)
		if err != nil {
			return err
		}
		cmd.PasswordHash = &hash
		// A password set by an administrator ends every login of the user.
		none := ""
		cmd.RevokeTokensExcept = &none
	}
	if err := c.Propose(cmd); err != nil {
		return err
	}
	return a.getUser(c)
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

// csvTime renders a time for CSV cells (RFC 3339 UTC, empty when unset).
func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// keypairView is a keypair as the API shows it. concurrency_used is read
// from the session records (the sessions that occupy slots, as the
// resource indicator counts them), never stored on the keypair.
func keypairView(tx *state.Txn, k *state.Keypair) (api.Keypair, error) {
	used, err := tx.OccupyingSessions(k.AccessKey)
	if err != nil {
		return api.Keypair{}, fmt.Errorf("count the sessions of keypair %s: %w", k.AccessKey, err)
	}
	return api.Keypair{AccessKey: k.AccessKey, User: k.User, IsActive: k.IsActive, IsAdmin: k.IsAdmin,
		ResourcePolicy: k.ResourcePolicy, RateLimit: k.RateLimit, ConcurrencyUsed: used, CreatedAt: k.CreatedAt,
		LastUsed: k.LastUsed}, nil
}
