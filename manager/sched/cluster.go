// Package sched decides where sessions run. It is pure (no Raft, no clock)
// and runs on the leader only: the leader's scheduler uses it to plan a
// batch, and the plan it proposes carries every decision (agents and GPU
// slices). The FSM never runs it: the Plan applier holds each placement to
// a small frozen set of invariants of its own (manager/fsm/plan_check.go),
// so a change here — a tie-break, a packing rule, a message — changes what
// the leader proposes, never what replaying a log produces. Its predicates
// are at least as strict as those invariants, so what it plans from the
// current state is accepted. A Cluster is a view of the state (keypairs,
// agents, what they hold) plus what was already admitted in the same
// batch.
package sched

import (
	"time"

	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/imageref"
	"github.com/berth-cluster/berth/shared/slots"
)

// Keypair is what admission needs to know of a keypair.
type Keypair struct {
	AccessKey string
	// Refusal, when set, says why the keypair may start nothing now (it
	// or its user is inactive, its policy is gone).
	Refusal       string
	Limits        slots.Limits // the policy's total_resource_slots; absent = unlimited
	MaxConcurrent *int         // nil = unlimited
	MaxContainers int
	Occupied      slots.Slots // what its occupying sessions hold
	Sessions      int         // how many of its sessions occupy slots
}

// Agent is what placement needs to know of an agent.
type Agent struct {
	ID          string
	Alive       bool
	Schedulable bool
	Capacity    slots.Slots
	Occupied    slots.Slots // what every session holds on it
	// GPUs in the agent's order (by NVML index), with what is held of
	// each; GPUQuantum is the step of its cuda.shares slices.
	GPUs       []GPU
	GPUQuantum int64
	// FolderHosts are the storage folder hosts the agent can mount.
	FolderHosts []string
	// Images are the names of the images the agent has.
	Images []string

	// AwaitingApproval: the agent joined with a token that did not
	// approve it and no superadmin has yet. Nothing is placed on it,
	// whatever else it offers.
	AwaitingApproval bool
}

// Request is a PENDING session as admission sees it.
type Request struct {
	SessionID   string
	AccessKey   string
	Slots       slots.Slots // per container
	Containers  int         // cluster_size; 0 reads as 1
	CreateIndex uint64
	// CreatedAt orders sessions created in one batched entry (one index):
	// the handler stamps it as requests arrive.
	CreatedAt time.Time
	Attempts  int
	// FolderHosts are the storage folder hosts the session mounts: only
	// agents that have every one of them will do.
	FolderHosts []string
	// Image is the session's image: agents that have it are preferred
	// (a preference, never a condition: the others pull it).
	Image string
}

func (r *Request) size() int { return max(1, r.Containers) }

// Source loads the state a Cluster starts from. Each keypair and agent is
// loaded at most once per Cluster.
type Source interface {
	// Keypair returns nil when the keypair does not exist.
	Keypair(accessKey string) (*Keypair, error)
	// Agent returns nil when the agent does not exist.
	Agent(id string) (*Agent, error)
	// Agents returns every agent.
	Agents() ([]*Agent, error)
}

// Cluster is a view of the state plus what this batch already admitted.
type Cluster struct {
	src      Source
	keypairs map[string]*keypairState // nil: no such keypair
	agents   map[string]*agentState   // nil: no such agent
	all      []*agentState            // every agent by id, once loaded
	loaded   bool
}

type keypairState struct {
	refusal       string
	limit         vec
	limited       [nSlots]bool
	maxConcurrent *int
	maxContainers int
	occupied      vec
	sessions      int
}

type agentState struct {
	id                 string
	alive, schedulable bool
	approved           bool
	capacity, occupied vec
	// extra is what the session being placed already put here (Place only).
	extra   vec
	gpus    []gpuState
	quantum int64
	hosts   []string // storage folder hosts, sorted
	images  []string // image names as the agent reported them
}

func (a *agentState) usable() bool { return a.alive && a.schedulable && a.approved }

// hasImage reports whether the agent has the image typed as image (normal:
// its full form). Names agents report are mostly full already (pulled
// images are stored so); only a short one is parsed.
func (a *agentState) hasImage(image, normal string) bool {
	if image == "" {
		return false
	}
	for _, n := range a.images {
		if n == image || n == normal {
			return true
		}
		if i := strings.IndexByte(n, '/'); i < 0 || !strings.ContainsAny(n[:i], ".:") && n[:i] != "localhost" {
			if imageref.Normal(n) == normal {
				return true
			}
		}
	}
	return false
}

// missingHost is the first of hosts the agent cannot mount, or "".
func (a *agentState) missingHost(hosts []string) string {
	for _, h := range hosts {
		if !slices.Contains(a.hosts, h) {
			return h
		}
	}
	return ""
}

func (a *agentState) free() vec { return a.capacity.sub(a.occupied) }

// NewCluster returns a view that loads from src as it needs.
func NewCluster(src Source) *Cluster {
	return &Cluster{src: src, keypairs: map[string]*keypairState{}, agents: map[string]*agentState{}}
}

func (c *Cluster) keypair(ak string) (*keypairState, error) {
	if k, ok := c.keypairs[ak]; ok {
		return k, nil
	}
	kp, err := c.src.Keypair(ak)
	if err != nil {
		return nil, fmt.Errorf("load keypair %s: %w", ak, err)
	}
	var k *keypairState
	if kp != nil {
		k = newKeypairState(kp)
	}
	c.keypairs[ak] = k
	return k, nil
}

func newKeypairState(kp *Keypair) *keypairState {
	k := &keypairState{refusal: kp.Refusal, maxConcurrent: kp.MaxConcurrent,
		maxContainers: kp.MaxContainers, sessions: kp.Sessions}
	k.limit, k.limited = limitVec(kp.Limits)
	// A slot Berth does not know cannot be in a record read from the
	// wire; if one is, it cannot be compared, so it is left out.
	k.occupied, _ = toVec(kp.Occupied)
	return k
}

func newAgentState(a *Agent) *agentState {
	s := &agentState{id: a.ID, alive: a.Alive, schedulable: a.Schedulable, approved: !a.AwaitingApproval, hosts: slices.Sorted(slices.Values(a.FolderHosts)),
		images: a.Images}
	s.capacity, _ = toVec(a.Capacity)
	s.occupied, _ = toVec(a.Occupied)
	s.quantum = a.GPUQuantum
	for _, g := range a.GPUs {
		s.gpus = append(s.gpus, gpuState{uuid: g.UUID, shares: g.Shares, held: g.Held})
	}
	return s
}

func (c *Cluster) agent(id string) (*agentState, error) {
	if a, ok := c.agents[id]; ok || c.loaded {
		return a, nil
	}
	ag, err := c.src.Agent(id)
	if err != nil {
		return nil, fmt.Errorf("load agent %s: %w", id, err)
	}
	var a *agentState
	if ag != nil {
		a = newAgentState(ag)
	}
	c.agents[id] = a
	return a, nil
}

// allAgents loads every agent, keeping the state of those already loaded:
// they may carry this batch's admissions.
func (c *Cluster) allAgents() ([]*agentState, error) {
	if c.loaded {
		return c.all, nil
	}
	ags, err := c.src.Agents()
	if err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}
	for _, ag := range ags {
		a, ok := c.agents[ag.ID]
		if !ok || a == nil {
			a = newAgentState(ag)
			c.agents[ag.ID] = a
		}
		c.all = append(c.all, a)
	}
	slices.SortFunc(c.all, func(x, y *agentState) int { return strings.Compare(x.id, y.id) })
	c.loaded = true
	return c.all, nil
}

// Commit records an admitted session: its keypair and its agents hold its
// slots from now on in this view. The caller has verified it fits.
func (c *Cluster) Commit(r Request, agents []string) error {
	_, err := c.commit(r, agents)
	return err
}

// commit is Commit returning each container's GPU slices, allocated on its
// agent in container order: the same slices CheckAgents found room for.
func (c *Cluster) commit(r Request, agents []string) ([][]state.GPUSlice, error) {
	need, bad := toVec(r.Slots)
	if bad != "" {
		return nil, fmt.Errorf("session %s asks for unknown slot %s", r.SessionID, bad)
	}
	k, err := c.keypair(r.AccessKey)
	if err != nil {
		return nil, err
	}
	gpus := make([][]state.GPUSlice, len(agents))
	var held vec
	for i, id := range agents {
		a, err := c.agent(id)
		if err != nil {
			return nil, err
		}
		if a == nil {
			held = held.add(need)
			continue
		}
		h := a.hold(need)
		if wantsGPU(h) {
			sl, ok := a.allocate(h)
			if !ok {
				return nil, fmt.Errorf("session %s: container %d does not fit the GPUs of agent %s", r.SessionID, i, id)
			}
			a.take(sl, false)
			gpus[i] = sl
		}
		a.occupied = a.occupied.add(h)
		held = held.add(h)
	}
	if k != nil {
		k.occupied = k.occupied.add(held)
		k.sessions++
	}
	return gpus, nil
}

// Capacity is the summed capacity of alive agents (DRF shares are of it).
func (c *Cluster) capacity() (vec, error) {
	all, err := c.allAgents()
	if err != nil {
		return vec{}, err
	}
	var total vec
	for _, a := range all {
		if a.alive {
			total = total.add(a.capacity)
		}
	}
	return total, nil
}

// Digest fingerprints every agent as the view stands (call it before
// Schedule to fingerprint the state): status, capacity and what it holds. Equal
// digests mean no room was made or taken on any agent in between, so a
// session that found no room then would find none now either; the
// scheduler counts a head-of-line try only when the digest moved.
func (c *Cluster) Digest() (uint64, error) {
	all, err := c.allAgents()
	if err != nil {
		return 0, err
	}
	h := fnv.New64a()
	var buf []byte
	for _, a := range all {
		buf = append(buf[:0], a.id...)
		buf = append(buf, 0, boolByte(a.alive), boolByte(a.schedulable), boolByte(a.approved))
		for _, h := range a.hosts {
			buf = append(append(buf, h...), 0)
		}
		for _, v := range a.capacity {
			buf = binary.BigEndian.AppendUint64(buf, uint64(v))
		}
		for _, v := range a.occupied {
			buf = binary.BigEndian.AppendUint64(buf, uint64(v))
		}
		for _, g := range a.gpus {
			buf = append(buf, g.uuid...)
			buf = binary.BigEndian.AppendUint64(buf, uint64(g.held))
		}
		h.Write(buf)
	}
	return h.Sum64(), nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
