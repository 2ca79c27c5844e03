package sched

import (
	"fmt"
	"strings"

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

func (v vec) times(k int64) vec {
	for i := range v {
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

// over lists the slots where have + need > limit, as "cpu 2 + 1 > 2". A
// slot the request does not ask for is never over: a keypair or an agent
// already past a limit (an admin lowered it under running sessions) may
// still take a session that adds nothing there.
func over(have, need, limit vec, limited [nSlots]bool) string {
	var parts []string
	for i := range have {
		if limited[i] && need[i] > 0 && have[i]+need[i] > limit[i] {
			parts = append(parts, fmt.Sprintf("%s %s + %s > %s", slotAt(i), amount(i, have[i]), amount(i, need[i]), amount(i, limit[i])))
		}
	}
	return strings.Join(parts, ", ")
}

func allLimited() (l [nSlots]bool) {
	for i := range l {
		l[i] = true
	}
	return l
}
