package httpapi

import (
	"net/http"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/shared/api"
)

func (a *API) listDomains(c *Call) error {
	ds, err := a.cluster.State().Read().Domains()
	if err != nil {
		return err
	}
	out := api.List[api.Domain]{Items: make([]api.Domain, 0, len(ds))}
	for _, d := range ds {
		if c.Who.Role() != api.RoleSuperadmin && d.Name != c.Who.User.Domain {
			continue
		}
		out.Items = append(out.Items, api.Domain{Name: d.Name, Description: d.Description, IsActive: d.IsActive, CreatedAt: d.CreatedAt})
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) listGroups(c *Call) error {
	domain := c.R.PathValue("domain")
	if c.Who.Role() != api.RoleSuperadmin && domain != c.Who.User.Domain {
		return apierr.New(apierr.NotFound, "no domain %s", domain)
	}
	tx := a.cluster.State().Read()
	d, err := tx.Domain(domain)
	if err != nil {
		return err
	}
	if d == nil {
		return apierr.New(apierr.NotFound, "no domain %s", domain)
	}
	gs, err := tx.Groups(domain)
	if err != nil {
		return err
	}
	out := api.List[api.Group]{Items: make([]api.Group, 0, len(gs))}
	for _, g := range gs {
		out.Items = append(out.Items, api.Group{Name: g.Name, Domain: g.Domain, Description: g.Description, IsActive: g.IsActive, CreatedAt: g.CreatedAt})
	}
	return c.JSON(http.StatusOK, out)
}
