package state

import (
	"slices"
	"strconv"
	"time"

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
	// CPUMillis is the CPU time the container used, as far as the leader's
	// SessionsMeasured entries recorded it (usage_days.go).
	CPUMillis int64 `json:"cpu_millis,omitempty"`
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
	// PeakMemBytes is the largest working set its containers together
	// reported, as the leader's SessionsMeasured entries recorded it
	// (usage_days.go).
	PeakMemBytes int64 `json:"peak_mem_bytes,omitempty"`
	Meta
}

func (s *Session) id() string { return s.ID }

// MeasuredCPUMillis is the CPU time its containers used, as recorded.
func (s *Session) MeasuredCPUMillis() int64 {
	var n int64
	for _, c := range s.Containers {
		n += c.CPUMillis
	}
	return n
}

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

// The sessions table keeps its records and indexes in B-trees (trees.go):
// by id; newest first (lists); by status, only while the session has not
// ended (the ended ones are the bulk of the table and nothing lists them
// by status: they are counted, sessions_counts.go); and by agent, only
// while it occupies slots there (admission, sessions_index.go).
func sessionsTable() Table {
	return Table{Name: tableSessions, ID: 10, New: func() any { return new(Session) }}
}

// Session returns the session with the id or nil.
func (t *Txn) Session(id string) (*Session, error) { return t.tr.session(id), nil }

// SessionsInStatus lists the sessions in one status, in id order. A
// status that has not ended is an index look-up; an ended one is a scan of
// every session (nothing in the product asks for one).
func (t *Txn) SessionsInStatus(status api.SessionStatus) ([]*Session, error) {
	var out []*Session
	if !status.Ended() {
		ascend(t, t.tr.sessionsLive, true, &Session{Status: status}, func(s *Session) bool {
			if s.Status != status {
				return false
			}
			out = append(out, s)
			return true
		})
		return out, nil
	}
	err := t.EachSession(func(s *Session) bool { return s.Status == status }, func(s *Session) error {
		out = append(out, s)
		return nil
	})
	return out, err
}

// Sessions pages through sessions newest first (by the Raft index that
// created them); the cursor is opaque.
func (t *Txn) Sessions(cursor string, limit int, keep func(*Session) bool) ([]*Session, string, error) {
	out, next := newestPage(t, t.tr.sessionsNewest, cursor, limit, keep, func(create uint64, id string) *Session {
		return &Session{ID: id, Meta: Meta{CreateIndex: create}}
	})
	return out, next, nil
}

// EachSession calls f for every session keep accepts, in id order.
func (t *Txn) EachSession(keep func(*Session) bool, f func(*Session) error) error {
	var err error
	ascend(t, t.tr.sessions, false, nil, func(s *Session) bool {
		if keep == nil || keep(s) {
			err = f(s)
		}
		return err == nil
	})
	return err
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
	// So do the usage rows of its keypair (usage_days.go), the counts by
	// status and the desired-state marks of its agents (desired.go).
	if err := t.accrue(old, s); err != nil {
		return err
	}
	var was api.SessionStatus
	if old != nil {
		was = old.Status
	}
	if err := t.countStatus(was, s.Status); err != nil {
		return err
	}
	if err := t.markSession(index, old, s); err != nil {
		return err
	}
	t.compactSession(s)
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

// EachSessionOldestFirst calls f for sessions from the oldest created
// (the Raft index that created them) on, until f says stop.
func (t *Txn) EachSessionOldestFirst(f func(*Session) (more bool, err error)) error {
	var err error
	stable(t, t.tr.sessionsNewest).Descend(func(s *Session) bool {
		var more bool
		more, err = f(s)
		return err == nil && more
	})
	return err
}
