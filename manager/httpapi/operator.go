package httpapi

import (
	"crypto/subtle"
	"net"
	"net/http"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// JoinTokenHeader carries the cluster join token of a joining manager.
const JoinTokenHeader = "X-Berth-Join-Token"

func (a *API) raftConfiguration(c *Call) error {
	members, err := a.members(c.R.Context())
	if err != nil {
		return err
	}
	leader := a.cluster.Leader()
	applied, last, term := a.cluster.Raft().Indexes()
	return c.JSON(http.StatusOK, api.RaftConfiguration{Leader: leader, Servers: members, AppliedIndex: applied, LastIndex: last, Term: term})
}

func (a *API) removePeer(c *Call) error {
	id := c.R.PathValue("id")
	servers, err := a.cluster.Raft().Servers()
	if err != nil {
		return err
	}
	found := false
	for _, s := range servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return apierr.New(apierr.NotFound, "no manager %s in the Raft configuration", id)
	}
	if err := a.cluster.Raft().RemoveServer(id); err != nil {
		return err
	}
	if err := c.Propose(fsm.MemberDelete{ID: id}); err != nil {
		return err
	}
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) join(c *Call) error {
	if a.cfg.JoinToken == "" {
		return apierr.New(apierr.Forbidden, "this cluster does not accept joins: start every manager with the same -join-token")
	}
	if err := a.tokenGuessesLeft(c); err != nil {
		return err
	}
	got := c.R.Header.Get(JoinTokenHeader)
	if subtle.ConstantTimeCompare([]byte(got), []byte(a.cfg.JoinToken)) != 1 {
		return a.tokenFailed(c, "manager join", apierr.New(apierr.Unauthorized, "wrong or missing %s", JoinTokenHeader))
	}
	var req api.JoinRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	var bad apierr.Fields
	if req.ID == "" {
		bad.Add("id", "id is required")
	}
	for _, f := range [][2]string{{"raft_address", req.RaftAddr}, {"http_address", req.HTTPAddr}} {
		if _, _, err := net.SplitHostPort(f[1]); err != nil {
			bad.Add(f[0], "%s must be host:port", f[0])
		}
	}
	if err := bad.Err(); err != nil {
		return err
	}
	if a.cluster.Raft().InMemory() {
		return apierr.New(apierr.Conflict, "this manager runs with -dev: its Raft transport is in memory, so no manager can join it; form a cluster with -bootstrap-expect and -peers instead")
	}
	if err := c.Propose(fsm.MemberPut{Member: state.Member{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr}}); err != nil {
		return err
	}
	if err := a.cluster.Raft().AddVoter(req.ID, req.RaftAddr); err != nil {
		return err
	}
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}
