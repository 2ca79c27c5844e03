package httpapi

import (
	"net/http"
	"slices"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

func groupView(g *state.Group) api.Group {
	return api.Group{Name: g.Name, Domain: g.Domain, Description: g.Description, IsActive: g.IsActive, CreatedAt: g.CreatedAt}
}

func (a *API) listGroups(c *Call) error {
	domain, err := a.domainOf(c)
	if err != nil {
		return err
	}
	gs, err := a.cluster.Read().Groups(domain)
	if err != nil {
		return err
	}
	views := make([]api.Group, len(gs))
	for i, g := range gs {
		views[i] = groupView(g)
	}
	out, err := pageOf(c, views, func(g api.Group) string { return g.Name })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) createGroup(c *Call) error {
	domain, err := a.domainOf(c)
	if err != nil {
		return err
	}
	var req api.GroupCreate
	if err := c.Decode(&req); err != nil {
		return err
	}
	if !validName.MatchString(req.Name) {
		return apierr.Field(apierr.Invalid, "name", "name "+nameRule)
	}
	if err := checkDescription(&req.Description); err != nil {
		return err
	}
	v, err := propose[*state.Group](c, fsm.GroupCreate{Group: state.Group{Domain: domain, Name: req.Name, Description: req.Description,
		IsActive: true, CreatedAt: a.now().UTC()}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, groupView(v))
}

func (a *API) getGroup(c *Call) error {
	domain, err := a.domainOf(c)
	if err != nil {
		return err
	}
	tx := a.cluster.Read()
	g, err := tx.Group(domain, c.R.PathValue("group"))
	if err != nil {
		return err
	}
	if g == nil {
		return apierr.New(apierr.NotFound, "no group %s in domain %s", c.R.PathValue("group"), domain)
	}
	out := api.GroupDetail{Group: groupView(g), Members: []string{}}
	err = tx.EachUser(func(u *state.User) bool {
		return u.Domain == domain && slices.Contains(u.Groups, g.Name) && canSeeUser(c.Who, u)
	},
		func(u *state.User) error { out.Members = append(out.Members, u.Email); return nil })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) updateGroup(c *Call) error {
	domain, err := a.domainOf(c)
	if err != nil {
		return err
	}
	var p api.GroupPatch
	if err := c.Decode(&p); err != nil {
		return err
	}
	if err := checkDescription(p.Description); err != nil {
		return err
	}
	v, err := propose[*state.Group](c, fsm.GroupUpdate{Domain: domain, Name: c.R.PathValue("group"), Description: p.Description, IsActive: p.IsActive})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, groupView(v))
}

func (a *API) changeGroupMembers(c *Call) error {
	domain, err := a.domainOf(c)
	if err != nil {
		return err
	}
	var req api.GroupMembersChange
	if err := c.Decode(&req); err != nil {
		return err
	}
	if len(req.Add)+len(req.Remove) == 0 {
		return apierr.New(apierr.Invalid, "name users to add or remove: {\"add\":[emails],\"remove\":[emails]}")
	}
	norm := func(in []string) []string {
		out := make([]string, len(in))
		for i, e := range in {
			out[i] = normalizeEmail(e)
		}
		return out
	}
	add, remove := norm(req.Add), norm(req.Remove)
	if err := a.unseenMembers(c, add, remove); err != nil {
		return err
	}
	name := c.R.PathValue("group")
	if err := c.Propose(fsm.GroupMembers{Domain: domain, Name: name, Add: add, Remove: remove,
		ModifiedAt: a.now().UTC()}); err != nil {
		return err
	}
	return a.getGroup(c)
}

// unseenMembers refuses the users an admin may not reach (another domain's,
// a superadmin) with the applier's words for a user that does not exist, so
// the answer does not say which emails exist elsewhere. A superadmin reaches
// everyone and gets the applier's own reasons.
func (a *API) unseenMembers(c *Call, add, remove []string) error {
	if c.Who.Role() == api.RoleSuperadmin {
		return nil
	}
	tx := a.cluster.Read()
	var bad apierr.Fields
	for _, list := range []struct {
		field  string
		emails []string
	}{{"add", add}, {"remove", remove}} {
		for _, e := range list.emails {
			u, err := tx.User(e)
			if err != nil {
				return err
			}
			if u == nil || !canManageUser(c.Who, u) {
				bad.Add(list.field, "no user with email %s", e)
			}
		}
	}
	return bad.Err()
}
