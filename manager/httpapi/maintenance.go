package httpapi

import (
	"net/http"
)

// recalculateUsage is POST /v1/maintenance/recalculate-usage: the manual's
// RECALCULATE USAGE, which the leader runs (leader.RecalculateUsage).
func (a *API) recalculateUsage(c *Call) error {
	out, err := a.leader.RecalculateUsage(c.R.Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
