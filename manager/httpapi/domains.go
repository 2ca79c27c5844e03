package httpapi

import (
	"fmt"
	"net/http"
	"regexp"
	"unicode/utf8"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// validName is the shape of domain and group names: they appear in paths.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

const nameRule = "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"

func domainView(d *state.Domain) api.Domain {
	return api.Domain{Name: d.Name, Description: d.Description, IsActive: d.IsActive, CreatedAt: d.CreatedAt}
}

func (a *API) listDomains(c *Call) error {
	ds, err := a.cluster.Read().Domains()
	if err != nil {
		return err
	}
	var visible []api.Domain
	for _, d := range ds {
		if canSeeDomain(c.Who, d.Name) {
			visible = append(visible, domainView(d))
		}
	}
	out, err := pageOf(c, visible, func(d api.Domain) string { return d.Name })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) createDomain(c *Call) error {
	var req api.DomainCreate
	if err := c.Decode(&req); err != nil {
		return err
	}
	if !validName.MatchString(req.Name) {
		return apierr.Field(apierr.Invalid, "name", "name "+nameRule)
	}
	if err := checkDescription(&req.Description); err != nil {
		return err
	}
	v, err := propose[*state.Domain](c, fsm.DomainCreate{Domain: state.Domain{Name: req.Name, Description: req.Description, IsActive: true, CreatedAt: a.now().UTC()}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, domainView(v))
}

// domainOf checks the caller may administer the domain in the path: a
// superadmin any, an admin (or monitor, reading) only their own.
func (a *API) domainOf(c *Call) (string, error) {
	domain := c.R.PathValue("domain")
	if !canSeeDomain(c.Who, domain) {
		return "", apierr.New(apierr.NotFound, "no domain %s", domain)
	}
	d, err := a.cluster.Read().Domain(domain)
	if err != nil {
		return "", err
	}
	if d == nil {
		return "", apierr.New(apierr.NotFound, "no domain %s", domain)
	}
	return domain, nil
}

// maxDescriptionLen bounds the free-text description of domains and
// groups: shown in lists and the console, never meant for documents.
const maxDescriptionLen = 1024

func checkDescription(d *string) error {
	if d != nil && utf8.RuneCountInString(*d) > maxDescriptionLen {
		return apierr.Field(apierr.Invalid, "description", fmt.Sprintf("description must be at most %d characters", maxDescriptionLen))
	}
	return nil
}
