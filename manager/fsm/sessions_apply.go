package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/imageref"
)

// The appliers of the session entries (sessions.go). Every status change
// appends to status_history with the entry's time; the terminal statuses
// (TERMINATED, ERROR, CANCELLED) also set terminated_at.

// Bounds that keep slot arithmetic far from int64 overflow whatever a
// proposer sends: a request is at most 2^50 base units per slot (a petabyte
// of memory) and 1000 containers (the policy maximum is 100).
const (
	maxSlotValue   = int64(1) << 50
	maxClusterSize = 1000
)

// transition moves a session to status, recording why. The reason is also
// the status_info of a session on its way out or ended; a PENDING one's says
// why it waits (the scheduler's words, or the plan applier's refusal), a
// running one's is empty.
func transition(s *state.Session, status api.SessionStatus, at time.Time, reason string) {
	s.Status = status
	s.StatusInfo = ""
	s.Refusal = nil
	if status.EndingOrEnded() {
		s.StatusInfo = reason
	}
	s.StatusHistory = append(s.StatusHistory, api.StatusChange{Status: status, At: at, Reason: reason})
	if status.Ended() {
		s.TerminatedAt = &at
	}
}

func applySessionCreate(tx *state.Txn, index uint64, c *SessionCreate) (any, error) {
	s := c.Session.Copy()
	if s.ID == "" {
		return nil, apierr.Field(apierr.Invalid, "id", "a session needs an id")
	}
	if err := checkRequest(s); err != nil {
		return nil, err
	}
	if err := checkMounts(tx, s); err != nil {
		return nil, err
	}
	old, err := tx.Session(s.ID)
	if err != nil {
		return nil, err
	}
	if old != nil {
		// Ids are random; a clash means the proposer reused one.
		return nil, apierr.New(apierr.Conflict, "session %s already exists", s.ID)
	}
	k, err := tx.Keypair(s.AccessKey)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, apierr.Field(apierr.Invalid, "access_key", "no keypair with access key "+s.AccessKey)
	}
	if !k.IsActive {
		return nil, apierr.New(apierr.Forbidden, "keypair %s is inactive", k.AccessKey)
	}
	u, err := tx.User(k.User)
	if err != nil {
		return nil, err
	}
	if u == nil || u.Status != api.StatusActive {
		return nil, apierr.New(apierr.Forbidden, "user %s is inactive", k.User)
	}
	// The policy as it is now, not as the handler saw it: a policy that
	// stopped allowing root, or the image, stops every later create.
	p, err := tx.ResourcePolicy(k.ResourcePolicy)
	if err != nil {
		return nil, err
	}
	if s.RunAsRoot && (p == nil || !p.AllowRoot) {
		return nil, RootNotAllowed(k.ResourcePolicy)
	}
	if p != nil && !imageref.Allowed(p.AllowedImages, s.Image) {
		return nil, ImageNotAllowed(p.Name, s.Image, p.AllowedImages)
	}
	// Whether the session may reach beyond its node is the policy's, as it
	// is now; a policy changed later leaves the session as it started.
	pol, err := tx.ResourcePolicy(k.ResourcePolicy)
	if err != nil {
		return nil, err
	}
	s.NoEgress = pol != nil && !pol.EgressAllowed()
	// What the lifecycle fills in is never taken from the proposer.
	s.Owner = k.User
	if s.Domain == "" {
		s.Domain = u.Domain
	}
	s.ClusterSize = max(1, s.ClusterSize)
	s.Containers, s.Attempts = nil, 0
	s.StartedAt, s.TerminatedAt, s.ExitCode = nil, nil, nil
	s.StatusHistory = nil
	s.Meta = state.Meta{}
	transition(s, api.SessionPending, s.CreatedAt, "created")
	if err := tx.PutSession(index, s); err != nil {
		return nil, err
	}
	return s, nil
}

// RootNotAllowed is the refusal of run_as_root under a policy without
// allow_root.
func RootNotAllowed(policy string) error {
	return apierr.Field(apierr.Forbidden, "run_as_root",
		"resource policy "+policy+" does not allow root in containers (allow_root is false); leave run_as_root out to run as the unprivileged container user, or ask an administrator for a policy that allows root")
}

// ImageNotAllowed is the refusal of an image the policy's allowed_images
// does not match.
func ImageNotAllowed(policy, image string, patterns []string) error {
	return apierr.Field(apierr.Unprocessable, "image",
		fmt.Sprintf("image %s (%s) is not allowed by resource policy %s, which allows only %s; pick an image that matches, or ask an administrator to add it to allowed_images",
			image, imageref.Normal(image), policy, strings.Join(patterns, ", ")))
}

// checkRequest refuses what would break admission's arithmetic. Decoding
// already refuses unknown and negative slots; a hand-made entry could
// still carry amounts whose sums overflow.
func checkRequest(s *state.Session) error {
	for _, n := range slices.Sorted(maps.Keys(s.Requested)) {
		if v := s.Requested[n]; v < 0 || v > maxSlotValue {
			return apierr.Field(apierr.Invalid, "resources", "slot "+string(n)+" is out of range")
		}
	}
	if s.ClusterSize > maxClusterSize {
		return apierr.Field(apierr.Invalid, "cluster_size", "cluster_size is out of range")
	}
	if len(s.Ports) > api.MaxSessionPorts {
		return apierr.Field(apierr.Invalid, "ports", "too many ports")
	}
	names := map[string]bool{}
	for _, p := range s.Ports {
		if names[p.Name] || p.Port < 1 || p.Port > 65535 {
			return apierr.Field(apierr.Invalid, "ports", "a port is out of range or named twice")
		}
		names[p.Name] = true
	}
	return nil
}

func applySessionTerminate(tx *state.Txn, index uint64, c *SessionTerminate) (any, error) {
	s, err := tx.Session(c.SessionID)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, apierr.New(apierr.NotFound, "no session %s", c.SessionID)
	}
	reason := c.Reason
	if reason == "" {
		reason = "user-request"
	}
	n := s.Copy()
	switch {
	case s.Status == api.SessionPending:
		transition(n, api.SessionCancelled, c.At, reason)
	case s.Status.EndingOrEnded():
		// Already on its way out or ended: asking again changes nothing.
		return s, nil
	case allEnded(n.Containers):
		// Every container already stopped (a batch session between its
		// last exits and their report): nothing left to wait for.
		transition(n, api.SessionTerminated, c.At, reason)
	default:
		transition(n, api.SessionTerminating, c.At, reason)
	}
	if err := tx.PutSession(index, n); err != nil {
		return nil, err
	}
	return n, nil
}

func applySessionsTouch(tx *state.Txn, index uint64, c *SessionsTouch) (any, error) {
	// Sorted so the order of writes does not depend on map iteration.
	for _, id := range slices.Sorted(maps.Keys(c.LastActivity)) {
		s, err := tx.Session(id)
		if err != nil {
			return nil, err
		}
		at := c.LastActivity[id]
		if s == nil || s.Status.Ended() || (s.LastActivityAt != nil && !at.After(*s.LastActivityAt)) {
			continue // gone, ended, or older news
		}
		n := s.Copy()
		n.LastActivityAt = &at
		if err := tx.PutSession(index, n); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// sessionsLost ends the sessions that hold slots on a LOST agent: ERROR
// with reason agent-lost, in the entry that marks the agent, so they stop
// occupying at the same index. (Backend.AI leaves them RUNNING forever.)
func sessionsLost(tx *state.Txn, index uint64, agent string, at time.Time) error {
	ss, err := tx.OccupyingOnAgent(agent)
	if err != nil {
		return err
	}
	for _, s := range ss {
		n := s.Copy()
		transition(n, api.SessionError, at, "agent-lost")
		if err := tx.PutSession(index, n); err != nil {
			return err
		}
	}
	return nil
}
