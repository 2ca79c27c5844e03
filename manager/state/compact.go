package state

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// What keeps a record as small as what it says. Every manager holds every
// record in memory, and a record decoded from a log entry or a snapshot
// brings its own copy of every string, map and slice (encoding/json gives
// a slice of one element room for four). So a record is compacted before
// it is stored: its repeated values (statuses, images, reasons, agent ids,
// slot amounts) point to one shared copy, and its slices are cut to their
// length. Records in the store are never modified in place (copy, change,
// put), so sharing them is safe.

// maxInterned bounds the shared values a store keeps: repeated values are
// few (statuses, images, agents); past the bound, new values are kept as
// they come.
const maxInterned = 1 << 16

// interner holds the shared copies. Only the store's writer uses it (Apply
// is serial; a restore fills a store of its own).
type interner struct {
	strings map[string]string
	amounts map[string]slots.Slots
}

func newInterner() *interner {
	return &interner{strings: map[string]string{}, amounts: map[string]slots.Slots{}}
}

func (in *interner) str(s string) string {
	if in == nil || s == "" {
		return s
	}
	if c, ok := in.strings[s]; ok {
		return c
	}
	if len(in.strings) < maxInterned {
		in.strings[s] = s
	}
	return s
}

func (in *interner) slots(sl slots.Slots) slots.Slots {
	if in == nil || len(sl) == 0 {
		return sl
	}
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(sl)) {
		b.WriteString(string(n))
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(sl[n], 10))
		b.WriteByte(',')
	}
	key := b.String()
	if c, ok := in.amounts[key]; ok {
		return c
	}
	if len(in.amounts) < maxInterned {
		in.amounts[key] = sl
	}
	return sl
}

// exact returns s with no room beyond its length (a copy when it had
// some).
func exact[S ~[]E, E any](s S) S {
	if cap(s) == len(s) {
		return s
	}
	if len(s) == 0 {
		return nil
	}
	out := make(S, len(s))
	copy(out, s)
	return out
}

// compactSession makes a session share its repeated values and cuts its
// slices to length (see above).
func (t *Txn) compactSession(s *Session) {
	in := t.in
	// Its access key and owner are its keypair's strings, as the create
	// applier sets them; a session restored from a snapshot brings copies.
	if k := t.tr.keypair(s.AccessKey); k != nil {
		s.AccessKey = k.AccessKey
		if s.Owner == k.User {
			s.Owner = k.User
		}
	}
	s.Image = in.str(s.Image)
	s.Type = in.str(s.Type)
	s.Domain = in.str(s.Domain)
	s.Status = api.SessionStatus(in.str(string(s.Status)))
	s.Requested = in.slots(s.Requested)
	s.Command = exact(s.Command)
	s.Mounts = exact(s.Mounts)
	s.Ports = exact(s.Ports)
	s.Agents = exact(s.Agents)
	for i, a := range s.Agents {
		s.Agents[i] = in.str(a)
	}
	s.StatusHistory = exact(s.StatusHistory)
	for i := range s.StatusHistory {
		h := &s.StatusHistory[i]
		h.Status = api.SessionStatus(in.str(string(h.Status)))
		h.Reason = in.str(h.Reason)
	}
	s.Containers = exact(s.Containers)
	for i := range s.Containers {
		c := &s.Containers[i]
		c.Agent = in.str(c.Agent)
		c.Status = api.ContainerStatus(in.str(string(c.Status)))
		c.Slots = in.slots(c.Slots)
		c.ImageDigest = in.str(c.ImageDigest)
		c.GPUs = exact(c.GPUs)
	}
}

// compactUser shares a user's repeated values.
func (t *Txn) compactUser(u *User) {
	in := t.in
	u.Role = in.str(u.Role)
	u.Status = in.str(u.Status)
	u.Domain = in.str(u.Domain)
	u.Groups = exact(u.Groups)
	for i, g := range u.Groups {
		u.Groups[i] = in.str(g)
	}
}

// compactKeypair shares a keypair's repeated values; its user is its
// owner's own email string.
func (t *Txn) compactKeypair(k *Keypair) {
	k.ResourcePolicy = t.in.str(k.ResourcePolicy)
	if u, err := t.User(k.User); err == nil && u != nil {
		k.User = u.Email
	}
}
