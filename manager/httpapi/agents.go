package httpapi

import (
	"cmp"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/ids"
	"github.com/berth-cluster/berth/shared/slots"
)

// registerAgent is POST /v1/agents/register. A new agent is admitted by
// its join token: the managers' shared -agent-token, or one issued by POST
// /v1/agents/tokens (whose uses, expiry and revocation the FSM decides, and
// which says whether the agent may take sessions at once). An agent that
// kept its id and secret (its state dir) proves the secret instead and
// updates its record: its token may be used up or expired by then. Failed
// attempts are limited per client address.
func (a *API) registerAgent(c *Call) error {
	if err := a.tokenGuessesLeft(c); err != nil {
		return err
	}
	secret := bearer(c.R)
	var join joinAdmission
	if secret == "" {
		// Checked before the body is read: a stranger learns nothing more
		// than that the token is wrong.
		var err error
		if join, err = a.agentJoinToken(c); err != nil {
			return a.tokenFailed(c, "agent registration", err)
		}
	}
	var req api.AgentRegister
	if err := decodeAgentReport(c, true, &req); err != nil {
		return err
	}
	req.Images = sortedImages(req.Images)
	if err := checkGPUs(req.GPUs, req.GPUShareQuantum); err != nil {
		return err
	}
	req.GPUs = sortedGPUs(req.GPUs)
	req.FolderHosts = sortedHosts(req.FolderHosts)
	req.ProjectQuotaHosts = quotaHosts(req.ProjectQuotaHosts, req.FolderHosts)
	if req.ID != "" {
		return a.reregisterAgent(c, &req)
	}
	if secret != "" {
		var err error
		if join, err = a.agentJoinToken(c); err != nil {
			return a.tokenFailed(c, "agent registration", err)
		}
	}
	if err := a.simulatedAllowed(req.Simulated); err != nil {
		return err
	}
	id, err := ids.New(a.rnd, ids.Agent)
	if err != nil {
		return err
	}
	newSecret, err := auth.NewSecretKey(a.rnd)
	if err != nil {
		return err
	}
	now := a.now().UTC()
	ag := state.Agent{ID: id, Secret: newSecret, Address: req.Address, Status: state.AgentAlive, Schedulable: true,
		Capacity: req.Capacity, Node: req.Node, Images: req.Images, GPUs: req.GPUs, GPUShareQuantum: req.GPUShareQuantum,
		FolderHosts: req.FolderHosts, ProjectQuotaHosts: req.ProjectQuotaHosts, Version: req.Version, LastHeartbeatAt: now,
		Simulated: req.Simulated}
	// An issued token's own auto_approve decides inside Apply.
	ag.AwaitingApproval = join.shared && a.cfg.AgentTokenNeedsApproval
	rec, err := propose[*state.Agent](c, fsm.AgentPut{Agent: ag, TokenHash: join.tokenHash, At: now})
	if err != nil {
		// The token may have been used up, expired or revoked since the
		// look-up: the FSM's answer is the one that counts.
		return a.tokenFailed(c, "agent registration", err)
	}
	a.leader.AgentRegistered(id, now)
	a.log.Info("agent registered", "agent", id, "address", req.Address, "capacity", req.Capacity.String(),
		"join_token", cmp.Or(rec.JoinToken, "shared"), "awaiting_approval", rec.AwaitingApproval, "simulated", rec.Simulated)
	return c.JSON(http.StatusCreated, api.AgentRegistered{ID: id, Secret: newSecret})
}

// bearer is the credential of Authorization: Bearer, or "".
func bearer(r *http.Request) string {
	s, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(s)
}

// reregisterAgent updates a known agent's record with what it reports now;
// what an admin decided (schedulable, approval) stays.
func (a *API) reregisterAgent(c *Call, req *api.AgentRegister) error {
	rec, err := a.agentWithSecret(req.ID, c.R)
	if err != nil {
		return a.tokenFailed(c, "agent re-registration", err)
	}
	// A simulated agent stays simulated (fsm.AgentUpdate), whatever it
	// says now.
	if err := a.simulatedAllowed(req.Simulated || rec.Simulated); err != nil {
		return err
	}
	now := a.now().UTC()
	if rec.Status == state.AgentDisconnected {
		// Restarted while disconnected: its return is its sessions'
		// activity, as a heartbeat's would be.
		a.leader.AgentReconnected(rec.ID, now)
	}
	alive := state.AgentAlive
	if err := c.Propose(fsm.AgentUpdate{ID: rec.ID, Address: &req.Address, Capacity: &req.Capacity, Node: &req.Node,
		Images: &req.Images, GPUs: &req.GPUs, GPUShareQuantum: &req.GPUShareQuantum, FolderHosts: &req.FolderHosts,
		ProjectQuotaHosts: &req.ProjectQuotaHosts, Version: &req.Version, Status: &alive, LastHeartbeatAt: &now,
		Simulated: req.Simulated}); err != nil {
		return err
	}
	a.leader.AgentRegistered(rec.ID, now)
	a.log.Info("agent registered again", "agent", rec.ID, "address", req.Address, "was", rec.Status)
	return c.JSON(http.StatusOK, api.AgentRegistered{ID: rec.ID})
}

// simulatedAllowed refuses a simulated agent (berth-agent -runtime sim)
// unless the managers were started with -allow-simulated-agents: what is
// placed on one never runs, which a real cluster must not let happen by
// mistake. The agent says it is simulated; the check keeps an honest
// agent out, it cannot catch one that lies.
func (a *API) simulatedAllowed(simulated bool) error {
	if !simulated || a.cfg.AllowSimulatedAgents {
		return nil
	}
	return apierr.Field(apierr.Forbidden, "simulated", "this cluster does not accept simulated agents (berth-agent -runtime sim): "+
		"nothing placed on one runs; for benchmarks and development, start the managers with -allow-simulated-agents")
}

// unknownAgentSecret stands in for the secret of an agent that does not
// exist, so the comparison costs the same either way.
const unknownAgentSecret = "berth-unknown-agent-0000000000000000000"

// agentWithSecret authenticates an agent by Authorization: Bearer SECRET.
// One answer for an unknown id and a wrong secret, so the answer does not
// tell which agent ids exist.
func (a *API) agentWithSecret(id string, r *http.Request) (*state.Agent, error) {
	secret := bearer(r)
	rec, err := a.cluster.Read().Agent(id)
	if err != nil {
		return nil, err
	}
	want := unknownAgentSecret
	if rec != nil && rec.Secret != "" {
		want = rec.Secret
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 || rec == nil || rec.Secret == "" {
		return nil, apierr.New(apierr.Unauthorized, "unknown agent id or wrong secret: send Authorization: Bearer SECRET with the secret "+
			"the registration returned; an agent this cluster does not know must register again without an id")
	}
	return rec, nil
}

// decodeAgentReport decodes a registration or heartbeat into v after
// checking its address and capacity from the raw body, because the slots
// decoder folds absent and zero together and stops at the first bad slot:
// this way every problem is reported at once, and cpu and mem must be
// present. required: a registration must carry both (a heartbeat may omit
// them: nothing changed).
func decodeAgentReport(c *Call, required bool, v any) error {
	var raw struct {
		Address  string                         `json:"address"`
		Capacity map[slots.Name]json.RawMessage `json:"capacity"`
	}
	var bad apierr.Fields
	if json.Unmarshal(c.Body, &raw) == nil { // else the strict decoder says what is wrong
		checkAddress(raw.Address, required, &bad)
		checkCapacity(raw.Capacity, required, &bad)
	}
	if err := c.Decode(v); err != nil && len(bad) == 0 {
		return err
	}
	return bad.Err()
}

func checkCapacity(capacity map[slots.Name]json.RawMessage, required bool, bad *apierr.Fields) {
	if capacity == nil {
		if required {
			bad.Add("capacity", "capacity is required: the agent's cpu and mem after the reserved share")
		}
		return
	}
	for _, n := range []slots.Name{slots.CPU, slots.Mem} {
		if _, ok := capacity[n]; !ok {
			bad.Add("capacity."+string(n), "capacity.%s is required", n)
		}
	}
	names := make([]slots.Name, 0, len(capacity))
	for n := range capacity {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		field := "capacity." + string(n)
		var num json.Number
		v := capacity[n]
		if len(v) == 0 || v[0] == '"' || json.Unmarshal(v, &num) != nil || string(v) == "null" {
			bad.Add(field, "%s must be a number", field)
			continue
		}
		if _, err := slots.Parse(n, num.String()); err != nil {
			bad.Add(field, "%s", err.Error())
		}
	}
}

// checkAddress wants host:port, where the managers reach the agent.
func checkAddress(addr string, required bool, bad *apierr.Fields) {
	if addr == "" && !required {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		bad.Add("address", "address must be host:port where the managers reach the agent's API, e.g. 10.0.0.5:6001")
	}
}

// sortedImages orders an agent's images by name and digest (and makes nil
// empty), so a report listing the same images in another order is no
// change.
func sortedImages(images []api.Image) []api.Image {
	out := slices.Clone(nonNil(images))
	slices.SortFunc(out, func(x, y api.Image) int {
		return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.Digest, y.Digest))
	})
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// maxGPUShares bounds what one GPU may offer of cuda.shares (slots units):
// 100 is one GPU; far more than any sharing makes sense for is a mistake.
const maxGPUShares = 100 * 100

// checkGPUs checks a reported GPU inventory and share quantum, every
// problem at once: uuids present and distinct, shares offered positive and
// bounded, the quantum within what one GPU offers.
func checkGPUs(gpus []api.GPUDevice, quantum int64) error {
	var bad apierr.Fields
	seen := map[string]bool{}
	most := int64(0)
	for i, g := range gpus {
		field := fmt.Sprintf("gpus[%d]", i)
		switch {
		case g.UUID == "":
			bad.Add(field+".uuid", "%s.uuid is required", field)
		case seen[g.UUID]:
			bad.Add(field+".uuid", "GPU %s is listed twice", g.UUID)
		}
		seen[g.UUID] = true
		if g.Shares <= 0 || g.Shares > maxGPUShares {
			bad.Add(field+".shares", "%s.shares must be from 1 to %d (hundredths of a GPU; 100 = one GPU)", field, maxGPUShares)
		}
		if g.MemoryBytes < 0 {
			bad.Add(field+".memory_bytes", "%s.memory_bytes must not be negative", field)
		}
		most = max(most, g.Shares)
	}
	if quantum < 0 || (len(gpus) > 0 && quantum > most) {
		bad.Add("gpu_share_quantum", "gpu_share_quantum must be from 1 to what one GPU offers (%d), in hundredths of a GPU", most)
	}
	return bad.Err()
}

// sortedGPUs orders an inventory by NVML index, then uuid (and makes nil
// empty), so the same GPUs reported in another order are no change.
func sortedGPUs(gpus []api.GPUDevice) []api.GPUDevice {
	out := slices.Clone(nonNil(gpus))
	slices.SortFunc(out, func(x, y api.GPUDevice) int {
		return cmp.Or(cmp.Compare(x.Index, y.Index), cmp.Compare(x.UUID, y.UUID))
	})
	return out
}

// quotaHosts are the reported project-quota hosts that are folder hosts of
// the agent, in order, never nil: the report says what the agent enforces
// for folders it can mount, nothing else.
func quotaHosts(hosts, folderHosts []string) []string {
	return slices.DeleteFunc(sortedHosts(hosts), func(h string) bool { return !slices.Contains(folderHosts, h) })
}

// sortedHosts is a copy of a folder host list in order, never nil.
func sortedHosts(hosts []string) []string {
	out := slices.Clone(hosts)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
