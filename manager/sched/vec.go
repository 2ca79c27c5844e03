package sched

import (
	"fmt"
	"math"
	"strings"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/slots"
)

// nSlots is how many slots Berth knows (slots.Known).
const nSlots = 4

// vec is slots as a fixed array in slots.Known order. Placement compares a
// request with every agent for every container; maps would allocate and
// hash on each comparison, an array does neither.
type vec [nSlots]int64

// slotAt is the inverse of the vec layout: the name of position i.
func slotAt(i int) slots.Name { return slots.Known[i] }

func slotIndex(n slots.Name) (int, bool) {
	switch n {
	case slots.CPU:
		return 0, true
	case slots.Mem:
		return 1, true
	case slots.CUDADevice:
		return 2, true
	case slots.CUDAShares:
		return 3, true
	}
	return 0, false
}

// toVec converts slots. It names an unknown slot (the smallest name, so the
// answer does not depend on map order), which no request parsed from the
// wire can carry but a hand-made entry could; the known slots are
// converted all the same.
func toVec(s slots.Slots) (vec, string) {
	var v vec
	bad := ""
	for n, x := range s {
		i, ok := slotIndex(n)
		if !ok {
			if bad == "" || string(n) < bad {
				bad = string(n)
			}
			continue
		}
		v[i] = x
	}
	return v, bad
}

// limitVec converts limits; limited[i] is false where the slot is unlimited.
func limitVec(l slots.Limits) (v vec, limited [nSlots]bool) {
	for n, x := range l {
		if i, ok := slotIndex(n); ok {
			v[i], limited[i] = x, true
		}
	}
	return v, limited
}

func (v vec) add(o vec) vec {
	for i := range v {
		v[i] += o[i]
	}
	return v
}

func (v vec) sub(o vec) vec {
	for i := range v {
		v[i] -= o[i]
	}
	return v
}

// times is v × k, saturating: a request too large to multiply reads as
// over every limit rather than wrapping around under it.
func (v vec) times(k int64) vec {
	for i := range v {
		if k > 0 && v[i] > math.MaxInt64/k {
			v[i] = math.MaxInt64
			continue
		}
		v[i] *= k
	}
	return v
}

// fitsIn reports whether every slot of v is at most o's.
func (v vec) fitsIn(o vec) bool {
	for i := range v {
		if v[i] > o[i] {
			return false
		}
	}
	return true
}

// amount renders a quantity for a reason: wire decimals, memory in the
// largest binary unit that is exact ("4GiB").
func amount(i int, x int64) string {
	n := slotAt(i)
	if n == slots.Mem {
		return slots.FormatSize(x)
	}
	return string(slots.Format(n, x))
}

// overSlots lists the slots where have + need > limit. A slot the request
// does not ask for is never over: a keypair or an agent already past a
// limit (an admin lowered it under running sessions) may still take a
// session that adds nothing there.
func overSlots(have, need, limit vec, limited [nSlots]bool) []state.SlotOver {
	var out []state.SlotOver
	for i := range have {
		if limited[i] && need[i] > 0 && (have[i] > limit[i] || need[i] > limit[i]-have[i]) {
			out = append(out, state.SlotOver{Slot: slotAt(i), Have: have[i], Need: need[i], Limit: limit[i]})
		}
	}
	return out
}

// overText says overSlots' slots as "cpu 2 + 1 > 2, mem 4GiB + 1GiB > 4GiB".
func overText(o []state.SlotOver) string {
	parts := make([]string, len(o))
	for j, s := range o {
		i, _ := slotIndex(s.Slot)
		parts[j] = fmt.Sprintf("%s %s + %s > %s", s.Slot, amount(i, s.Have), amount(i, s.Need), amount(i, s.Limit))
	}
	return strings.Join(parts, ", ")
}

func allLimited() (l [nSlots]bool) {
	for i := range l {
		l[i] = true
	}
	return l
}
