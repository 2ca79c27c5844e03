package httpapi

import (
	"net/http"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/shared/api"
)

// appToken is POST /v1/sessions/{id}/apps/{name}/token: a one-time token
// for the session's owner to open one of its http ports on the apps origin
// (manager/apps), which is a site of its own, so that nothing a session
// serves runs with the console's cookies or can call the API as its viewer.
func (a *API) appToken(c *Call) error {
	s, err := a.visibleSession(c)
	if err != nil {
		return err
	}
	if c.Who.User.Email != s.Owner {
		// Admins reach the session but not its apps: an app's page runs
		// the session's code in the viewer's browser.
		return apierr.New(apierr.Forbidden, "only the owner of session %s may open its apps", s.ID)
	}
	name := c.R.PathValue("name")
	port, err := declaredPort(s, name)
	if err != nil || port.Name != name {
		return apierr.New(apierr.NotFound, "session %s declares no app %q (an http port of that name)", s.ID, name)
	}
	if port.Protocol != api.PortHTTP {
		return apierr.New(apierr.Conflict, "port %s of session %s is a tcp port: reach it with berth session port-forward %s LOCAL:%d", name, s.ID, s.ID, port.Port)
	}
	if s.Status != api.SessionRunning {
		return apierr.New(apierr.Conflict, "session %s is %s; its apps open once it is RUNNING", s.ID, s.Status)
	}
	if a.cfg.Apps == nil {
		return apierr.New(apierr.Conflict, "this cluster serves no apps origin: start the managers with -apps-addr (deploy/README.md)")
	}
	tok, err := a.cfg.Apps.Issue(s.ID, name, c.Who.User.Email, c.R.Host)
	if err != nil {
		return err
	}
	a.leader.SessionUsed(s.ID)
	return c.JSON(http.StatusCreated, tok)
}
