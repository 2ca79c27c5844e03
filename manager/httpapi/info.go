package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/version"
)

// health is the body of /healthz; peers read it to tell each other's role.
type health struct {
	Status    string `json:"status"`
	ID        string `json:"id"`
	RaftState string `json:"raft_state"`
}

func (a *API) healthz(c *Call) error {
	return c.JSON(http.StatusOK, health{Status: "ok", ID: a.cluster.ID(), RaftState: memberState(a.cluster.Raft().State())})
}

func (a *API) readyz(c *Call) error {
	id := a.cluster.Leader()
	if id == "" {
		return apierr.New(apierr.Unavailable, "this manager knows no leader yet")
	}
	if done, err := a.cluster.Read().Setting(state.SettingBootstrapped); err != nil || done == "" {
		return apierr.New(apierr.Unavailable, "this manager has not yet applied the cluster's first-start objects")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready", "leader": id})
}

func (a *API) metricsHandler(c *Call) error {
	promhttp.HandlerFor(a.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(c.W, c.R)
	return nil
}

func memberState(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return api.MemberLeader
	case raft.Candidate:
		return api.MemberCandidate
	case raft.Follower:
		return api.MemberFollower
	}
	return api.MemberUnreachable
}

func (a *API) info(c *Call) error {
	members, err := a.members(c.R.Context())
	if err != nil {
		return err
	}
	leader := a.cluster.Leader()
	applied, _, _ := a.cluster.Raft().Indexes()
	out := api.Info{Version: version.Version, Commit: version.Commit, APIVersion: version.APIVersion, License: version.License,
		Cluster: api.ClusterInfo{Leader: leader, Members: members, RaftIndex: applied}}
	tx := a.cluster.Read()
	agents, err := tx.Agents()
	if err != nil {
		return err
	}
	for _, ag := range agents {
		switch ag.Status {
		case state.AgentAlive:
			out.Agents.Alive++
		case state.AgentDisconnected:
			out.Agents.Disconnected++
		case state.AgentLost:
			out.Agents.Lost++
		}
	}
	if out.Sessions.Pending, err = tx.CountSessionsInStatus(api.SessionPending); err != nil {
		return err
	}
	if out.Sessions.Running, err = tx.CountSessionsInStatus(api.SessionRunning); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// members lists the Raft servers with the role each reports for itself;
// one that does not answer within a second is unreachable.
func (a *API) members(ctx context.Context) ([]api.Member, error) {
	n := a.cluster.Raft()
	servers, err := n.Servers()
	if err != nil {
		return nil, err
	}
	tx := a.cluster.Read()
	out := make([]api.Member, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		m := api.Member{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter, State: api.MemberUnreachable}
		if rec, err := tx.Member(m.ID); err == nil && rec != nil {
			m.Address = rec.HTTPAddr
		}
		out[i] = m
		if m.ID == a.cluster.ID() {
			out[i].State = memberState(n.State())
			continue
		}
		if m.Address == "" {
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out[i].State = a.probe(ctx, out[i].Address)
		}(i)
	}
	wg.Wait()
	return out, nil
}

func (a *API) probe(ctx context.Context, addr string) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.cfg.PeerScheme+"://"+addr+"/healthz", nil)
	if err != nil {
		return api.MemberUnreachable
	}
	resp, err := a.cfg.PeerTransport.RoundTrip(req)
	if err != nil {
		return api.MemberUnreachable
	}
	defer resp.Body.Close()
	var h health
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&h) != nil {
		return api.MemberUnreachable
	}
	return h.RaftState
}
