package slots

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Slots are amounts per slot in base units; an absent slot is zero. On the
// wire they are decimals keyed by slot name.
type Slots map[Name]int64

// Get returns the amount of a slot (zero when absent).
func (s Slots) Get(n Name) int64 { return s[n] }

// Add returns s + o.
func (s Slots) Add(o Slots) Slots {
	out := s.Clone()
	for n, v := range o {
		out[n] += v
	}
	return out.compact()
}

// Sub returns s - o (it may go negative; callers decide what that means).
func (s Slots) Sub(o Slots) Slots {
	out := s.Clone()
	for n, v := range o {
		out[n] -= v
	}
	return out.compact()
}

// Clone returns a copy.
func (s Slots) Clone() Slots {
	out := make(Slots, len(s))
	for n, v := range s {
		out[n] = v
	}
	return out
}

// FitsIn reports whether every slot of s is at most the same slot of o.
func (s Slots) FitsIn(o Slots) bool {
	for n, v := range s {
		if v > o[n] {
			return false
		}
	}
	return true
}

// Exceeding lists, in Known order, the slots where s is over limits, with
// both figures in wire units, e.g. "cpu 3 > 2".
func (s Slots) Exceeding(l Limits) []string {
	var out []string
	for _, n := range Known {
		lim, limited := l[n]
		if limited && s[n] > lim {
			out = append(out, fmt.Sprintf("%s %s > %s", n, Format(n, s[n]), Format(n, lim)))
		}
	}
	return out
}

func (s Slots) compact() Slots {
	for n, v := range s {
		if v == 0 {
			delete(s, n)
		}
	}
	return s
}

// MarshalJSON writes every known slot as a decimal (zero included).
func (s Slots) MarshalJSON() ([]byte, error) {
	m := make(map[Name]json.Number, len(Known))
	for _, n := range Known {
		m[n] = Format(n, s[n])
	}
	for n, v := range s {
		m[n] = Format(n, v)
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads decimals keyed by slot; null and absent are zero.
func (s *Slots) UnmarshalJSON(b []byte) error {
	var l Limits
	if err := l.UnmarshalJSON(b); err != nil {
		return err
	}
	*s = Slots(l).compact()
	return nil
}

// String renders the slots for logs and messages.
func (s Slots) String() string {
	var parts []string
	for _, n := range Known {
		if v, ok := s[n]; ok {
			parts = append(parts, fmt.Sprintf("%s=%s", n, Format(n, v)))
		}
	}
	return strings.Join(parts, " ")
}
