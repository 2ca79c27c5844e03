package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/berth-cluster/berth/manager/agentclient"
	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/imageref"
	"github.com/berth-cluster/berth/shared/registry"
)

// Images live on the agents; the managers know what each reported. A pull
// ahead of time and a removal are the leader's calls to the agents' API
// with their secrets (as exec and logs are), carrying the credentials of
// the image's registry; progress comes back in the agents' heartbeats.

const (
	// imageResolveTimeout bounds the look at a registry when a session's
	// image is on no agent.
	imageResolveTimeout = 15 * time.Second
	// agentImageCallTimeout bounds one call to an agent about an image.
	agentImageCallTimeout = 30 * time.Second
)

// listImages is the union of the images of the ALIVE agents (a LOST
// agent's images cannot be used), each with the agents that have it and,
// for admins, the pulls of it under way. ?allowed=true keeps only the
// images the caller's resource policy allows (what START offers).
func (a *API) listImages(c *Call) error {
	tx := a.cluster.Read()
	agents, err := tx.Agents()
	if err != nil {
		return err
	}
	var patterns []string
	if v := c.R.URL.Query().Get("allowed"); v != "" {
		only, err := strconv.ParseBool(v)
		if err != nil {
			return apierr.Field(apierr.Invalid, "allowed", "allowed must be true or false")
		}
		if only {
			if patterns, err = a.callerImagePatterns(c, tx); err != nil {
				return err
			}
		}
	}
	type key struct{ name, digest string }
	byKey := map[key]*api.ClusterImage{}
	get := func(k key) *api.ClusterImage {
		if byKey[k] == nil {
			byKey[k] = &api.ClusterImage{Image: api.Image{Name: k.name, Digest: k.digest}, Agents: []string{}}
		}
		return byKey[k]
	}
	for _, ag := range agents { // in id order, so each image's agents are sorted
		if ag.Status != state.AgentAlive {
			continue
		}
		for _, im := range ag.Images {
			ci := get(key{im.Name, im.Digest})
			ci.Size = im.Size
			// Which node has what is the administrators' business;
			// a user needs only the names to start a session.
			if watches(c.Who) {
				ci.Agents = append(ci.Agents, ag.ID)
			}
		}
		if !watches(c.Who) {
			continue
		}
		for _, p := range a.leader.Pulls(ag.ID) {
			if p.Error != "" {
				continue
			}
			ci := byKey[key{p.Image, ""}]
			for k, v := range byKey { // a pull of a name some agent has
				if k.name == p.Image || imageref.Same(k.name, p.Image) {
					ci = v
					break
				}
			}
			if ci == nil {
				ci = get(key{p.Image, ""})
			}
			ci.Pulling = append(ci.Pulling, api.ImagePullProgress{Agent: ag.ID, DoneBytes: p.DoneBytes, TotalBytes: p.TotalBytes})
		}
	}
	items := make([]api.ClusterImage, 0, len(byKey))
	for _, im := range byKey {
		if len(patterns) > 0 && !imageref.Allowed(patterns, im.Name) {
			continue
		}
		items = append(items, *im)
	}
	// Sorted by the cursor key itself, which is what paging compares.
	imageID := func(im api.ClusterImage) string { return im.Name + "@" + im.Digest }
	slices.SortFunc(items, func(x, y api.ClusterImage) int { return cmp.Compare(imageID(x), imageID(y)) })
	out, err := pageOf(c, items, imageID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// callerImagePatterns is the allowed_images of the caller's keypair's
// policy (token callers: their oldest active keypair's).
func (a *API) callerImagePatterns(c *Call, tx *state.Txn) ([]string, error) {
	kp := c.Who.Keypair
	if kp == nil {
		var err error
		if kp, err = loginKeypair(tx, c.Who.User.Email); err != nil {
			return nil, err
		}
	}
	p, err := tx.ResourcePolicy(kp.ResourcePolicy)
	if err != nil || p == nil {
		return nil, err
	}
	return p.AllowedImages, nil
}

// pullImage is POST /v1/images/pull.
func (a *API) pullImage(c *Call) error {
	var req api.ImagePullRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	ref, err := imageref.Parse(req.Image)
	if err != nil {
		return apierr.Field(apierr.Invalid, "image", err.Error())
	}
	tx := a.cluster.Read()
	targets, err := pullTargets(tx, req.Agents)
	if err != nil {
		return err
	}
	creds, err := a.registryCredentials(tx, []string{ref.Host})
	if err != nil {
		return err
	}
	// Refused at once when the registry says no: every agent would fail
	// the same way, later and less clearly.
	ctx, cancel := context.WithTimeout(c.R.Context(), imageResolveTimeout)
	defer cancel()
	if why := a.registrySaysNo(ctx, ref, creds); why != nil {
		return apierr.Field(apierr.Unprocessable, "image", "image "+req.Image+" cannot be pulled: "+why.Error())
	}
	body, err := json.Marshal(api.AgentImagePull{Image: req.Image, Registries: creds})
	if err != nil {
		return fmt.Errorf("encode pull request: %w", err)
	}
	out := api.ImagePullAccepted{Image: req.Image, Agents: []string{}}
	// At once: one slow agent must not hold the others' pulls.
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, ag := range targets {
		wg.Go(func() {
			errs[i] = a.agentImageCall(c.R.Context(), ag, http.MethodPost, "/v1/images/pull", body, http.StatusAccepted)
		})
	}
	wg.Wait()
	var failed []string
	for i, ag := range targets {
		if errs[i] != nil {
			failed = append(failed, errs[i].Error())
			continue
		}
		out.Agents = append(out.Agents, ag.ID)
	}
	a.log.Info("image pull requested", "image", req.Image, "agents", out.Agents, "by", c.Who.User.Email, "failed", failed)
	if len(out.Agents) == 0 {
		return apierr.New(apierr.Unavailable, "no agent took the pull: %s", joinReasons(failed))
	}
	out.Failed = failed
	return c.JSON(http.StatusAccepted, out)
}

// pullTargets are the named agents, each known and ALIVE, or every ALIVE,
// schedulable, approved agent when none is named.
func pullTargets(tx *state.Txn, ids []string) ([]*state.Agent, error) {
	var out []*state.Agent
	if len(ids) == 0 {
		all, err := tx.Agents()
		if err != nil {
			return nil, err
		}
		for _, ag := range all {
			if ag.Status == state.AgentAlive && ag.Schedulable && !ag.AwaitingApproval {
				out = append(out, ag)
			}
		}
		if len(out) == 0 {
			return nil, apierr.New(apierr.Conflict, "no agent is ALIVE, schedulable and approved to pull on")
		}
		return out, nil
	}
	var bad apierr.Fields
	for _, id := range ids {
		ag, err := tx.Agent(id)
		if err != nil {
			return nil, err
		}
		switch {
		case ag == nil:
			bad.Add("agents", "no agent %s", id)
		case ag.Status != state.AgentAlive:
			bad.Add("agents", "agent %s is %s; it can pull once it is ALIVE again", id, ag.Status)
		case slices.ContainsFunc(out, func(x *state.Agent) bool { return x.ID == id }):
			bad.Add("agents", "agent %s is named twice", id)
		default:
			out = append(out, ag)
		}
	}
	if err := bad.Err(); err != nil {
		e := err.(*apierr.Error)
		e.Kind = apierr.Unprocessable
		return nil, e
	}
	return out, nil
}

// removeImage is DELETE /v1/images/{ref...}?agent=ID: the agent removes the
// image unless a container (or a container it is about to start) uses it.
func (a *API) removeImage(c *Call) error {
	name := c.R.PathValue("ref")
	id := c.R.URL.Query().Get("agent")
	var bad apierr.Fields
	if _, err := imageref.Parse(name); err != nil {
		bad.Add("ref", "%s", err.Error())
	}
	if id == "" {
		bad.Add("agent", "agent is required: the agent to remove the image from (?agent=ID)")
	}
	if err := bad.Err(); err != nil {
		return err
	}
	ag, err := a.cluster.Read().Agent(id)
	if err != nil {
		return err
	}
	if ag == nil {
		return apierr.New(apierr.NotFound, "no agent %s", id)
	}
	if ag.Status != state.AgentAlive {
		return apierr.New(apierr.Conflict, "agent %s is %s; images can be removed from ALIVE agents", id, ag.Status)
	}
	if err := a.agentImageCall(c.R.Context(), ag, http.MethodDelete, "/v1/images/"+escapeRef(name), nil, http.StatusNoContent); err != nil {
		return err
	}
	a.log.Info("image removed", "image", name, "agent", id, "by", c.Who.User.Email)
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

// escapeRef escapes each segment of a reference for a URL path, keeping
// its slashes.
func escapeRef(ref string) string { return (&url.URL{Path: ref}).EscapedPath() }

// agentImageCall makes one call to an agent's image API and turns its
// refusal into the caller's answer, with the agent's words.
func (a *API) agentImageCall(ctx context.Context, ag *state.Agent, method, path string, body []byte, want int) error {
	ctx, cancel := context.WithTimeout(ctx, agentImageCallTimeout)
	defer cancel()
	resp, err := a.agents.Do(ctx, ag, method, path, nil, body)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return apierr.New(apierr.Unavailable, "agent %s did not answer in time", ag.ID)
		}
		a.log.Warn("call agent", "agent", ag.ID, "address", ag.Address, "err", err)
		return apierr.New(apierr.Unavailable, "could not reach agent %s at %s; retry, or check the agent", ag.ID, ag.Address)
	}
	defer resp.Body.Close()
	if resp.StatusCode == want {
		return nil
	}
	detail := agentclient.ReadRefusal(ag, resp).Detail
	switch resp.StatusCode {
	case http.StatusNotFound:
		return apierr.New(apierr.NotFound, "agent %s: %s", ag.ID, detail)
	case http.StatusConflict:
		return apierr.New(apierr.Conflict, "agent %s: %s", ag.ID, detail)
	case http.StatusBadRequest:
		return apierr.New(apierr.Invalid, "agent %s: %s", ag.ID, detail)
	}
	return apierr.New(apierr.Unavailable, "agent %s answered %d: %s", ag.ID, resp.StatusCode, detail)
}

func joinReasons(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += "; "
		}
		out += r
	}
	return out
}

// desiredRegistries are the credentials an agent needs for the images of
// its desired containers, and no others.
func (a *API) desiredRegistries(tx *state.Txn, containers []api.DesiredContainer) ([]api.RegistryCredentials, error) {
	var hosts []string
	for _, d := range containers {
		if r, err := imageref.Parse(d.Image); err == nil {
			hosts = append(hosts, r.Host)
		}
	}
	return a.registryCredentials(tx, hosts)
}

// checkImage says why a session's image can never run, or "": the policy's
// allowed_images must match it, and an image no ALIVE agent has must
// resolve through its registry (a HEAD of its manifest) now.
func (a *API) checkImage(ctx context.Context, tx *state.Txn, p *state.ResourcePolicy, image string, agents iter.Seq[*state.Agent]) string {
	ref, err := imageref.Parse(image)
	if err != nil {
		return err.Error()
	}
	if !imageref.Allowed(p.AllowedImages, image) {
		return fsm.ImageNotAllowed(p.Name, image, p.AllowedImages).(*apierr.Error).Detail
	}
	for ag := range agents {
		if ag.Status != state.AgentAlive {
			continue
		}
		for _, im := range ag.Images {
			if imageref.Same(im.Name, image) {
				return ""
			}
		}
	}
	creds, err := a.registryCredentials(tx, []string{ref.Host})
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, imageResolveTimeout)
	defer cancel()
	if why := a.registrySaysNo(ctx, ref, creds); why != nil {
		return fmt.Sprintf("image %s is on no ALIVE agent and cannot be pulled: %v", image, why)
	}
	return ""
}

// registrySaysNo resolves ref's manifest through its registry and returns
// the registry's refusal: the image does not exist, the credentials are
// not authorised, or its manifest is over 4 MiB. A registry this manager
// cannot reach (or another failure) is no answer: the agents may reach it,
// and a pull that fails ends the session with the reason.
func (a *API) registrySaysNo(ctx context.Context, ref imageref.Ref, creds []api.RegistryCredentials) error {
	_, err := registry.Head(ctx, ref.Normal, creds)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, registry.ErrUnauthorized), errors.Is(err, registry.ErrTooLarge):
		return err
	}
	a.log.Info("the image's registry gave no answer; the agents will try", "image", ref.Normal, "err", err)
	return nil
}
