package httpapi

import (
	"net/http"

	"github.com/berth-cluster/berth/shared/api"
)

func (a *API) listResourcePolicies(c *Call) error {
	ps, err := a.cluster.State().Read().ResourcePolicies()
	if err != nil {
		return err
	}
	out := api.List[api.ResourcePolicy]{Items: make([]api.ResourcePolicy, 0, len(ps))}
	for _, p := range ps {
		out.Items = append(out.Items, p.ResourcePolicy)
	}
	return c.JSON(http.StatusOK, out)
}
