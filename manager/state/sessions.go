package state

import (
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// SessionContainer is one container of a session: where it was placed and
// what it holds there.
type SessionContainer struct {
	Index    int                 `json:"index"`
	Agent    string              `json:"agent"`
	Status   api.ContainerStatus `json:"status"` // as the agent last reported it
	Slots    slots.Slots         `json:"slots"`
	ExitCode *int                `json:"exit_code,omitempty"`
	Reason   string              `json:"reason,omitempty"`
	// GPUs are the slices of the agent's GPUs the container holds.
	GPUs []GPUSlice `json:"gpus,omitempty"`
	// ImageDigest is the digest of the image the container was made
	// from, as its agent reported it.
	ImageDigest string `json:"image_digest,omitempty"`
	// Address is the container's address on its session's network, as
	// its agent reports it.
	Address string `json:"address,omitempty"`
	// ExitedAt is when the container exited, as its agent reported it.
	ExitedAt *time.Time `json:"exited_at,omitempty"`
}

// GPUSlice is the part of one GPU a container holds: Share in slots units
// of cuda.shares (a whole GPU, given for cuda.device, holds all the GPU's
// shares and has Whole set).
type GPUSlice struct {
	UUID  string `json:"uuid"`
	Share int64  `json:"share"`
	Whole bool   `json:"whole,omitempty"`
}

// ContainerID is the runtime id of a session's container.
func ContainerID(sessionID string, index int) string {
	return sessionID + "-" + strconv.Itoa(index)
}

// Session is a compute session. Requested is per container; a session of
// ClusterSize containers holds ClusterSize × Requested once placed.
type Session struct {
	ID             string             `json:"id"`
	Name           string             `json:"name"`
	Owner          string             `json:"owner"`
	AccessKey      string             `json:"access_key"`
	Domain         string             `json:"domain"`
	Image          string             `json:"image"`
	Type           string             `json:"type"`
	Command        []string           `json:"command"`
	Env            map[string]string  `json:"env"`
	Mounts         []api.Mount        `json:"mounts"`
	ClusterSize    int                `json:"cluster_size"`
	Requested      slots.Slots        `json:"requested"`
	Status         api.SessionStatus  `json:"status"`
	StatusInfo     string             `json:"status_info"`
	StatusHistory  []api.StatusChange `json:"status_history"`
	Containers     []SessionContainer `json:"containers"`
	Attempts       int                `json:"attempts"` // scheduling tries that failed
	CreatedAt      time.Time          `json:"created_at"`
	StartedAt      *time.Time         `json:"started_at"`
	TerminatedAt   *time.Time         `json:"terminated_at"`
	ExitCode       *int               `json:"exit_code"`
	LastActivityAt *time.Time         `json:"last_activity_at"`
	// Agents lists the agents the containers are on (an index).
	Agents []string `json:"agents"`
	// RunAsRoot: the containers run as root, which the keypair's policy
	// allowed when the session was created.
	RunAsRoot bool `json:"run_as_root,omitempty"`
	// Ports are the ports the session declared (agent/network keeps them
	// with each container's address).
	Ports []api.SessionPort `json:"ports,omitempty"`
	// NoEgress keeps the session on its own network: its policy's
	// allow_egress was false when it was created (decided in Apply).
	NoEgress bool `json:"no_egress,omitempty"`
	// Refusal is why the plan applier last turned the PENDING session
	// down, as a code: status_info is rendered from it when the session is
	// read (Info). Any change of status clears it.
	Refusal *Refusal `json:"refusal,omitempty"`
	Meta
}

func (s *Session) id() string { return s.ID }

// Info is the session's status_info as people read it: the plan applier's
// refusal rendered from its code, or else the recorded text (why it ended,
// or the scheduler's reason for waiting).
func (s *Session) Info() string {
	if s.Refusal != nil {
		return s.Refusal.String()
	}
	return s.StatusInfo
}

// Copy returns a deep copy to modify and put back.
func (s *Session) Copy() *Session {
	c := *s
	c.Command = slices.Clone(s.Command)
	c.StatusHistory = slices.Clone(s.StatusHistory)
	c.Containers = slices.Clone(s.Containers)
	c.Agents = slices.Clone(s.Agents)
	c.Mounts = slices.Clone(s.Mounts)
	c.Ports = slices.Clone(s.Ports)
	if s.Refusal != nil {
		r := *s.Refusal
		r.Over = slices.Clone(s.Refusal.Over)
		c.Refusal = &r
	}
	if s.Env != nil {
		c.Env = make(map[string]string, len(s.Env))
		for k, v := range s.Env {
			c.Env[k] = v
		}
	}
	return &c
}

// Holds is what the session occupies in all (zero unless occupying).
func (s *Session) Holds() slots.Slots {
	total := slots.Slots{}
	if !s.Status.Occupying() {
		return total
	}
	for _, c := range s.Containers {
		total = total.Add(c.Slots)
	}
	return total
}

// HoldsOn is what the session occupies on one agent.
func (s *Session) HoldsOn(agent string) slots.Slots {
	total := slots.Slots{}
	if !s.Status.Occupying() {
		return total
	}
	for _, c := range s.Containers {
		if c.Agent == agent {
			total = total.Add(c.Slots)
		}
	}
	return total
}

const tableSessions = "sessions"

func sessionsTable() Table {
	return Table{Name: tableSessions, ID: 10, New: func() any { return new(Session) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id":         stringIndex("id", "ID", true, false),
			"newest":     newestIndexSchema(),
			"access_key": stringIndex("access_key", "AccessKey", false, false),
			"owner":      stringIndex("owner", "Owner", false, false),
			"status":     stringIndex("status", "Status", false, false),
			"agent": {Name: "agent", AllowMissing: true,
				Indexer: &memdb.StringSliceFieldIndex{Field: "Agents"}},
			// Admission's index (sessions_index.go): the sessions that
			// hold slots on an agent.
			"occupying_agent": {Name: "occupying_agent", AllowMissing: true,
				Indexer: &occupyingIndex{keys: func(s *Session) []string { return s.Agents }}},
		}}}
}

// Session returns the session with the id or nil.
func (t *Txn) Session(id string) (*Session, error) { return first[Session](t, tableSessions, "id", id) }

// SessionsOfKeypair lists a keypair's sessions, any status.
func (t *Txn) SessionsOfKeypair(accessKey string) ([]*Session, error) {
	return list[Session](t, tableSessions, "access_key", accessKey)
}

// SessionsOnAgent lists the sessions with a container on the agent.
func (t *Txn) SessionsOnAgent(agent string) ([]*Session, error) {
	return list[Session](t, tableSessions, "agent", agent)
}

// SessionsInStatus lists the sessions in one status, in id order.
func (t *Txn) SessionsInStatus(status api.SessionStatus) ([]*Session, error) {
	return list[Session](t, tableSessions, "status", string(status))
}

// CountSessionsInStatus is how many sessions are in one status.
func (t *Txn) CountSessionsInStatus(status api.SessionStatus) (int, error) {
	return count(t, tableSessions, "status", string(status))
}

// Sessions pages through sessions newest first (by the Raft index that
// created them); the cursor is opaque.
func (t *Txn) Sessions(cursor string, limit int, keep func(*Session) bool) ([]*Session, string, error) {
	return newest(t, tableSessions, cursor, limit, keep)
}

// EachSession calls f for every session keep accepts, in id order.
func (t *Txn) EachSession(keep func(*Session) bool, f func(*Session) error) error {
	return each(t, tableSessions, keep, f)
}

// PutSession inserts or replaces a session at the Raft index.
func (t *Txn) PutSession(index uint64, s *Session) error {
	s.Agents = s.Agents[:0]
	for _, c := range s.Containers {
		if c.Agent != "" && !slices.Contains(s.Agents, c.Agent) {
			s.Agents = append(s.Agents, c.Agent)
		}
	}
	slices.Sort(s.Agents)
	// Occupancy moves with the record (usage.go): out of what the old
	// version held, into what this one holds.
	old, err := t.Session(s.ID)
	if err != nil {
		return err
	}
	if err := t.account(old, -1); err != nil {
		return err
	}
	if err := t.account(s, 1); err != nil {
		return err
	}
	if err := t.markSession(index, old, s); err != nil {
		return err
	}
	return t.put(tableSessions, index, s)
}

// OccupiedByKeypair is what a keypair's occupying sessions hold, derived
// from the session records and kept with them (usage.go), so it cannot
// drift and costs one lookup.
func (t *Txn) OccupiedByKeypair(accessKey string) (slots.Slots, error) {
	sl, _, err := t.KeypairUsage(accessKey)
	return sl, err
}

// OccupiedOnAgent is what every session holds on an agent.
func (t *Txn) OccupiedOnAgent(agent string) (slots.Slots, error) {
	u, err := t.usage(usageAgent + agent)
	if err != nil || u == nil {
		return slots.Slots{}, err
	}
	return u.Slots.Clone(), nil
}

// OccupyingSessions counts a keypair's sessions that count against
// max_concurrent_sessions: those holding slots. Waiting (PENDING) ones do
// not; they wait for one of these to end.
func (t *Txn) OccupyingSessions(accessKey string) (int, error) {
	_, n, err := t.KeypairUsage(accessKey)
	return n, err
}
