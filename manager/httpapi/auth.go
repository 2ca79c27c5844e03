package httpapi

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

func (a *API) login(c *Call) error {
	var req api.LoginRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	email := normalizeEmail(req.Email)
	var missing apierr.Fields
	if email == "" {
		missing.Add("email", "email is required")
	}
	if req.Password == "" {
		missing.Add("password", "password is required")
	}
	if err := missing.Err(); err != nil {
		return err
	}
	for _, lim := range []struct {
		l   *auth.Limiter
		key string
		who string
	}{{a.loginByAddr, a.clientAddr(c.R), "this address"}, {a.loginByEmail, email, "this email"}} {
		if ok, wait := lim.l.Allow(lim.key); !ok {
			retryAfter(c.W, wait)
			return apierr.New(apierr.RateLimited, "too many login attempts for %s; wait %s and try again", lim.who, wait.Round(1e9))
		}
	}
	u, err := c.api.cluster.Read().User(email)
	if err != nil {
		return err
	}
	hash := a.dummyHash // an unknown email costs what a wrong password does
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := auth.CheckPassword(hash, req.Password)
	if err != nil {
		return err
	}
	if u == nil || !ok {
		return apierr.New(apierr.Unauthorized, "wrong email or password")
	}
	if u.Status != api.StatusActive {
		return apierr.New(apierr.Forbidden, "user %s is inactive; ask an administrator to reactivate it", u.Email)
	}
	token, err := auth.NewToken(a.rnd)
	if err != nil {
		return err
	}
	now := a.now().UTC()
	t := state.Token{Hash: auth.HashToken(token), User: u.Email, CreatedAt: now, ExpiresAt: now.Add(a.cfg.TokenTTL)}
	if err := c.Propose(fsm.TokenCreate{Token: t}); err != nil {
		return err
	}
	http.SetCookie(c.W, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", Expires: t.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.R.TLS != nil})
	return c.JSON(http.StatusOK, api.LoginResponse{Token: token, ExpiresAt: t.ExpiresAt, CSRFToken: a.csrfToken(t.Hash), User: a.userView(u, nil)})
}

func (a *API) logout(c *Call) error {
	if c.Who.TokenHash == "" {
		return apierr.New(apierr.Invalid, "logout ends a login token; this request was signed with a keypair, which has none (deactivate the keypair instead)")
	}
	if err := c.Propose(fsm.TokenDelete{Hash: c.Who.TokenHash}); err != nil {
		return err
	}
	http.SetCookie(c.W, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) whoami(c *Call) error {
	out := api.WhoAmI{User: a.userView(c.Who.User, nil)}
	if c.Who.Keypair != nil {
		out.AccessKey = c.Who.Keypair.AccessKey
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) changePassword(c *Call) error {
	var req api.PasswordChange
	if err := c.Decode(&req); err != nil {
		return err
	}
	var bad apierr.Fields
	if req.OldPassword == "" {
		bad.Add("old_password", "old_password is required")
	}
	for _, p := range auth.PasswordProblems(req.NewPassword) {
		bad.Add("new_password", "%s", strings.Replace(p, "password", "new_password", 1))
	}
	if err := bad.Err(); err != nil {
		return err
	}
	ok, err := auth.CheckPassword(c.Who.User.PasswordHash, req.OldPassword)
	if err != nil {
		return err
	}
	if !ok {
		return apierr.Field(apierr.Invalid, "old_password", "old_password is not the current password")
	}
	if subtle.ConstantTimeCompare([]byte(req.OldPassword), []byte(req.NewPassword)) == 1 {
		return apierr.Field(apierr.Invalid, "new_password", "new_password must differ from the current password")
	}
	hash, err := a.cfg.PasswordCost.Hash(a.rnd, req.NewPassword)
	if err != nil {
		return err
	}
	keep := c.Who.TokenHash
	no := false
	if err := c.Propose(fsm.UserUpdate{Email: c.Who.User.Email, ModifiedAt: a.now().UTC(), PasswordHash: &hash,
		NeedPasswordChange: &no, RevokeTokensExcept: &keep}); err != nil {
		return err
	}
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
