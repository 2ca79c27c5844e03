package httpapi

import (
	"net/http"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// listKeypairs shows an admin every keypair of the users they administer
// (?user=, ?is_active=) and anyone else their own.
func (a *API) listKeypairs(c *Call) error {
	q := c.R.URL.Query()
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	var active *bool
	switch q.Get("is_active") {
	case "":
	case "true", "false":
		v := q.Get("is_active") == "true"
		active = &v
	default:
		return apierr.Field(apierr.Invalid, "is_active", "is_active must be true or false")
	}
	user := normalizeEmail(q.Get("user"))
	admin := c.Who.IsAdmin() || c.Who.Role() == api.RoleMonitor
	if !admin {
		if user != "" && user != c.Who.User.Email {
			return apierr.Field(apierr.Forbidden, "user", "you may list only your own keypairs")
		}
		user = c.Who.User.Email
	}
	tx := a.cluster.State().Read()
	keep := func(k *state.Keypair) bool {
		if (user != "" && k.User != user) || (active != nil && k.IsActive != *active) {
			return false
		}
		if c.Who.Role() == api.RoleSuperadmin || k.User == c.Who.User.Email {
			return true
		}
		u, err := tx.User(k.User)
		return err == nil && u != nil && a.canSeeUser(c.Who, u)
	}
	kps, next, err := tx.Keypairs(q.Get("cursor"), limit, keep)
	if err != nil {
		return err
	}
	out := api.List[api.Keypair]{Items: make([]api.Keypair, 0, len(kps)), NextCursor: next}
	for _, k := range kps {
		out.Items = append(out.Items, keypairView(k))
	}
	return c.JSON(http.StatusOK, out)
}
