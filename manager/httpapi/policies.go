package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// listResourcePolicies pages through policies by name (?limit=, ?cursor=).
func (a *API) listResourcePolicies(c *Call) error {
	q := c.R.URL.Query()
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	ps, err := a.cluster.Read().ResourcePolicies()
	if err != nil {
		return err
	}
	out := api.List[api.ResourcePolicy]{Items: []api.ResourcePolicy{}}
	// Policies are few and already sorted by name; the cursor is the name
	// the next page starts at, as for the other lists.
	cursor := q.Get("cursor")
	for _, p := range ps {
		if p.Name < cursor {
			continue
		}
		if len(out.Items) == limit {
			out.NextCursor = p.Name
			break
		}
		out.Items = append(out.Items, a.policyView(p))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getResourcePolicy(c *Call) error {
	p, err := a.cluster.Read().ResourcePolicy(c.R.PathValue("name"))
	if err != nil {
		return err
	}
	if p == nil {
		return apierr.New(apierr.NotFound, "no resource policy named %s", c.R.PathValue("name"))
	}
	return c.JSON(http.StatusOK, a.policyView(p))
}

func (a *API) createResourcePolicy(c *Call) error {
	b, err := decodePolicyBody(c.Body, "")
	if err != nil {
		return err
	}
	v, err := propose[*state.ResourcePolicy](c, fsm.PolicyCreate{Policy: b.newPolicy(a.now().UTC())})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, a.policyView(v))
}

// updateResourcePolicy changes the fields the body names. Admission reads
// the policy afresh for every new session, so a change applies to the next
// one at once; sessions already running keep what they hold.
func (a *API) updateResourcePolicy(c *Call) error {
	name := c.R.PathValue("name")
	b, err := decodePolicyBody(c.Body, name)
	if err != nil {
		return err
	}
	u, err := b.update(name, a.now().UTC())
	if err != nil {
		return err
	}
	v, err := propose[*state.ResourcePolicy](c, u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.policyView(v))
}

func (a *API) deleteResourcePolicy(c *Call) error {
	if err := c.Propose(fsm.PolicyDelete{Name: c.R.PathValue("name")}); err != nil {
		return err
	}
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

// policyColumns are the columns of the CSV export (API.md).
func policyColumns() []string {
	cols := []string{"name"}
	for _, n := range slots.Known {
		cols = append(cols, string(n))
	}
	return append(cols, "max_containers_per_session", "idle_timeout", "max_concurrent_sessions",
		"max_session_lifetime", "allowed_vfolder_hosts", "max_vfolder_size", "max_vfolder_count", "allow_root",
		"allowed_images")
}

// exportResourcePolicies streams every policy as CSV; an empty cell is
// unlimited (or, for max_session_lifetime, no limit), and folder hosts are
// joined with ';'.
func (a *API) exportResourcePolicies(c *Call) error {
	name, err := exportFilename(c.R.URL.Query().Get("filename"), "resource-policies.csv")
	if err != nil {
		return err
	}
	ps, err := a.cluster.Read().ResourcePolicies()
	if err != nil {
		return err
	}
	return c.csvExport(name, policyColumns(), func(row func([]string) error) error {
		for _, p := range ps {
			if err := row(policyRow(p)); err != nil {
				return err
			}
		}
		return nil
	})
}

func policyRow(p *state.ResourcePolicy) []string {
	cells := []string{p.Name}
	for _, n := range slots.Known {
		cell := ""
		if v, limited := p.TotalResourceSlots[n]; limited {
			cell = slots.Format(n, v).String()
		}
		cells = append(cells, cell)
	}
	return append(cells,
		strconv.Itoa(p.MaxContainersPerSession), strconv.FormatInt(p.IdleTimeout, 10),
		csvOptional(p.MaxConcurrentSessions), csvOptional(p.MaxSessionLifetime),
		strings.Join(p.AllowedVfolderHosts, ";"), csvOptional(p.MaxVfolderSize), strconv.Itoa(p.MaxVfolderCount),
		strconv.FormatBool(p.AllowRoot), strings.Join(p.AllowedImages, ";"))
}

func csvOptional[T int | int64](v *T) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(int64(*v), 10)
}

// policyView is the wire form: every slot present (null = unlimited, which
// slots.Limits renders), the folder hosts always a list, and the disconnect
// grace that applies to the policy's sessions on this manager's grace.
func (a *API) policyView(p *state.ResourcePolicy) api.ResourcePolicy {
	v := p.ResourcePolicy
	if v.TotalResourceSlots == nil {
		v.TotalResourceSlots = slots.Limits{}
	}
	if v.AllowedVfolderHosts == nil {
		v.AllowedVfolderHosts = []string{}
	}
	if v.AllowedImages == nil {
		v.AllowedImages = []string{}
	}
	egress := p.EgressAllowed()
	v.AllowEgress = &egress
	grace := int64(p.DisconnectGrace(a.leader.DisconnectGrace()) / time.Second)
	v.MaxDisconnectEffective = &grace
	return v
}
