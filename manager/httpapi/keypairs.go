package httpapi

import (
	"net/http"
	"strconv"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// keypairFilter reads ?user= and ?is_active= and limits a caller to what
// they may see: an admin the keypairs of their domain (a superadmin all),
// anyone else their own.
func (a *API) keypairFilter(c *Call, tx *state.Txn) (func(*state.Keypair) bool, error) {
	q := c.R.URL.Query()
	var active *bool
	switch q.Get("is_active") {
	case "":
	case "true", "false":
		v := q.Get("is_active") == "true"
		active = &v
	default:
		return nil, apierr.Field(apierr.Invalid, "is_active", "is_active must be true or false")
	}
	user := normalizeEmail(q.Get("user"))
	if !watches(c.Who) {
		if user != "" && user != c.Who.User.Email {
			return nil, apierr.Field(apierr.Forbidden, "user", "you may list only your own keypairs")
		}
		user = c.Who.User.Email
	}
	return func(k *state.Keypair) bool {
		if (user != "" && k.User != user) || (active != nil && k.IsActive != *active) {
			return false
		}
		return canSeeKeypair(c.Who, tx, k)
	}, nil
}

func (a *API) listKeypairs(c *Call) error {
	q := c.R.URL.Query()
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	tx := a.cluster.Read()
	keep, err := a.keypairFilter(c, tx)
	if err != nil {
		return err
	}
	kps, next, err := tx.Keypairs(q.Get("cursor"), limit, keep)
	if err != nil {
		return err
	}
	out := api.List[api.Keypair]{Items: make([]api.Keypair, 0, len(kps)), NextCursor: next}
	for _, k := range kps {
		v, err := keypairView(tx, k)
		if err != nil {
			return err
		}
		out.Items = append(out.Items, v)
	}
	return c.JSON(http.StatusOK, out)
}

var keypairColumns = []string{"access_key", "user", "is_active", "is_admin", "resource_policy", "rate_limit", "concurrency_used", "created_at", "last_used"}

func (a *API) exportKeypairs(c *Call) error {
	name, err := exportFilename(c.R.URL.Query().Get("filename"), "keypairs.csv")
	if err != nil {
		return err
	}
	tx := a.cluster.Read()
	keep, err := a.keypairFilter(c, tx)
	if err != nil {
		return err
	}
	return c.csvExport(name, keypairColumns, func(row func([]string) error) error {
		return tx.EachKeypair(keep, func(k *state.Keypair) error {
			v, err := keypairView(tx, k)
			if err != nil {
				return err
			}
			last := ""
			if v.LastUsed != nil {
				last = csvTime(*v.LastUsed)
			}
			return row([]string{v.AccessKey, v.User, strconv.FormatBool(v.IsActive), strconv.FormatBool(v.IsAdmin),
				v.ResourcePolicy, strconv.Itoa(v.RateLimit), strconv.Itoa(v.ConcurrencyUsed), csvTime(v.CreatedAt), last})
		})
	})
}

func (a *API) createKeypair(c *Call) error {
	var req api.KeypairCreate
	if err := c.Decode(&req); err != nil {
		return err
	}
	req.User = normalizeEmail(req.User)
	setDefault(&req.ResourcePolicy, "default")
	var bad apierr.Fields
	if req.User == "" {
		bad.Add("user", "user (the owner's email) is required")
	}
	if req.RateLimit < 0 {
		bad.Add("rate_limit", "rate_limit must be 0 (no limit) or a positive number of requests per 15 minutes")
	}
	if err := bad.Err(); err != nil {
		return err
	}
	u, err := a.cluster.Read().User(req.User)
	if err != nil {
		return err
	}
	// A superadmin (or a user of another domain) is answered as if unknown.
	if u == nil || !canManageUser(c.Who, u) {
		return apierr.Field(apierr.Invalid, "user", "no user with email "+req.User)
	}
	if u.Status != api.StatusActive {
		return apierr.Field(apierr.Conflict, "user", "user "+u.Email+" is inactive; reactivate it before giving it credentials")
	}
	privileged := u.Role == api.RoleAdmin || u.Role == api.RoleSuperadmin
	isAdmin := privileged
	if req.IsAdmin != nil {
		if *req.IsAdmin && !privileged {
			return apierr.Field(apierr.Invalid, "is_admin", "is_admin needs a user with the admin or superadmin role; "+u.Email+" is "+u.Role)
		}
		isAdmin = *req.IsAdmin
	}
	kp, err := a.newKeypair(u.Email, req.ResourcePolicy, isAdmin)
	if err != nil {
		return err
	}
	kp.RateLimit = req.RateLimit
	v, err := propose[*state.Keypair](c, fsm.KeypairPut{Keypair: *kp})
	if err != nil {
		return err
	}
	out, err := keypairView(a.cluster.Read(), v)
	if err != nil {
		return err
	}
	out.SecretKey = kp.SecretKey
	return c.JSON(http.StatusCreated, out)
}

// keypairOf finds the keypair in the path that the caller may see.
func (a *API) keypairOf(c *Call) (*state.Keypair, error) {
	ak := c.R.PathValue("access_key")
	tx := a.cluster.Read()
	k, err := tx.Keypair(ak)
	if err != nil {
		return nil, err
	}
	if k == nil || !canSeeKeypair(c.Who, tx, k) {
		return nil, apierr.New(apierr.NotFound, "no keypair with access key %s", ak)
	}
	return k, nil
}

func (a *API) getKeypair(c *Call) error {
	k, err := a.keypairOf(c)
	if err != nil {
		return err
	}
	v, err := keypairView(a.cluster.Read(), k)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (a *API) updateKeypair(c *Call) error {
	var p api.KeypairPatch
	if err := c.Decode(&p); err != nil {
		return err
	}
	var bad apierr.Fields
	if p.RateLimit != nil && *p.RateLimit < 0 {
		bad.Add("rate_limit", "rate_limit must be 0 (no limit) or a positive number of requests per 15 minutes")
	}
	if p.ResourcePolicy != nil && *p.ResourcePolicy == "" {
		bad.Add("resource_policy", "resource_policy must name a policy")
	}
	if err := bad.Err(); err != nil {
		return err
	}
	k, err := a.keypairOf(c)
	if err != nil {
		return err
	}
	if err := a.mayAdminister(c, k); err != nil {
		return err
	}
	v, err := propose[*state.Keypair](c, fsm.KeypairUpdate{AccessKey: k.AccessKey, IsActive: p.IsActive, ResourcePolicy: p.ResourcePolicy, RateLimit: p.RateLimit})
	if err != nil {
		return err
	}
	out, err := keypairView(a.cluster.Read(), v)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) deleteKeypair(c *Call) error {
	k, err := a.keypairOf(c)
	if err != nil {
		return err
	}
	if err := a.mayAdminister(c, k); err != nil {
		return err
	}
	if err := c.Propose(fsm.KeypairDelete{AccessKey: k.AccessKey}); err != nil {
		return err
	}
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

// mayAdminister: only admins change keypairs, those they see.
func (a *API) mayAdminister(c *Call, k *state.Keypair) error {
	if !canManageKeypair(c.Who, a.cluster.Read(), k) {
		return apierr.New(apierr.Forbidden, "only an admin may change or delete keypairs")
	}
	return nil
}
