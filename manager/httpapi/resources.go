package httpapi

import (
	"fmt"
	"net/http"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/quota"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// myResources is the resource indicator of the caller's keypair, or with
// ?access_key= of another keypair the caller may see.
func (a *API) myResources(c *Call) error {
	tx := a.cluster.Read()
	kp, err := a.indicatorKeypair(c, tx)
	if err != nil {
		return err
	}
	p, err := tx.ResourcePolicy(kp.ResourcePolicy)
	if err != nil {
		return err
	}
	if p == nil {
		// The FSM refuses to delete a policy a keypair holds, so this is a
		// broken invariant, not a caller's mistake.
		return fmt.Errorf("keypair %s refers to resource policy %s, which does not exist", kp.AccessKey, kp.ResourcePolicy)
	}
	held, err := occupied(tx, kp.AccessKey)
	if err != nil {
		return err
	}
	agents, err := agentLoads(tx)
	if err != nil {
		return err
	}
	used, err := unfinishedSessions(tx, kp.AccessKey)
	if err != nil {
		return err
	}
	f := quota.Compute(p.TotalResourceSlots, held, agents)
	limits := p.TotalResourceSlots
	if limits == nil {
		limits = slots.Limits{}
	}
	return c.JSON(http.StatusOK, api.ResourceIndicator{
		AccessKey: kp.AccessKey, ResourcePolicy: p.Name, Limits: limits, Occupied: held, Remaining: f.Remaining,
		Cluster:                 api.ClusterSlots{Total: f.Total, Free: f.Free, LargestAgentFree: f.LargestAgentFree},
		Allocatable:             f.Allocatable,
		Concurrency:             api.Concurrency{Used: used, Max: p.MaxConcurrentSessions},
		MaxContainersPerSession: p.MaxContainersPerSession,
		AllowRoot:               p.AllowRoot,
		AllowedImages:           append([]string{}, p.AllowedImages...),
	})
}

// indicatorKeypair resolves whose figures to show. Anyone may name one of
// their own keypairs; admins and monitors any keypair of a user they can
// see. Someone else's key gets 403 whether it exists or not, so the answer
// does not reveal which access keys exist.
func (a *API) indicatorKeypair(c *Call, tx *state.Txn) (*state.Keypair, error) {
	ak := c.R.URL.Query().Get("access_key")
	if ak == "" {
		if c.Who.Keypair != nil {
			return c.Who.Keypair, nil
		}
		return loginKeypair(tx, c.Who.User.Email)
	}
	kp, err := tx.Keypair(ak)
	if err != nil {
		return nil, err
	}
	if kp != nil && kp.User == c.Who.User.Email {
		return kp, nil
	}
	if !watches(c.Who) {
		return nil, apierr.Field(apierr.Forbidden, "access_key", "you may see only your own keypairs' resources; only admins may name another user's access key")
	}
	if kp != nil && canSeeKeypair(c.Who, tx, kp) {
		return kp, nil
	}
	return nil, apierr.Field(apierr.NotFound, "access_key", fmt.Sprintf("no keypair with access key %s", ak))
}

// loginKeypair is the keypair a caller logged in with a token acts as: the
// oldest active one (by creation, then access key), as the console's
// resource indicator shows the keypair sessions are started with.
func loginKeypair(tx *state.Txn, email string) (*state.Keypair, error) {
	kps, err := tx.KeypairsOfUser(email)
	if err != nil {
		return nil, err
	}
	var best *state.Keypair
	for _, k := range kps {
		if !k.IsActive {
			continue
		}
		if best == nil || k.CreatedAt.Before(best.CreatedAt) || (k.CreatedAt.Equal(best.CreatedAt) && k.AccessKey < best.AccessKey) {
			best = k
		}
	}
	if best == nil {
		return nil, apierr.New(apierr.NotFound, "%s has no active keypair, and resources are granted per keypair; ask an admin for one", email)
	}
	return best, nil
}

// agentLoads are every agent's capacity with what sessions occupy on it.
func agentLoads(tx *state.Txn) ([]quota.Agent, error) {
	agents, err := tx.Agents()
	if err != nil {
		return nil, err
	}
	out := make([]quota.Agent, 0, len(agents))
	for _, ag := range agents {
		held, err := occupiedOnAgent(tx, ag.ID)
		if err != nil {
			return nil, err
		}
		gpuHeld, err := tx.GPUUsage(ag.ID)
		if err != nil {
			return nil, err
		}
		var gpus []quota.GPU
		for _, g := range ag.GPUs {
			gpus = append(gpus, quota.GPU{Shares: g.Shares, Held: gpuHeld[g.UUID]})
		}
		out = append(out, quota.Agent{Capacity: ag.Capacity, Occupied: held,
			Alive: ag.Status == state.AgentAlive, Schedulable: ag.Schedulable && !ag.AwaitingApproval, GPUs: gpus})
	}
	return out, nil
}

// What sessions hold is derived from the session records (manager/state),
// never stored beside them, so the indicator, admission and the scheduler
// agree by construction.

// occupied is what a keypair's sessions hold.
func occupied(tx *state.Txn, accessKey string) (slots.Slots, error) {
	return tx.OccupiedByKeypair(accessKey)
}

// occupiedOnAgent is what the sessions of every keypair hold on an agent.
func occupiedOnAgent(tx *state.Txn, agent string) (slots.Slots, error) {
	return tx.OccupiedOnAgent(agent)
}

// unfinishedSessions counts a keypair's sessions that count against
// max_concurrent_sessions (those holding slots).
func unfinishedSessions(tx *state.Txn, accessKey string) (int, error) {
	return tx.OccupyingSessions(accessKey)
}
