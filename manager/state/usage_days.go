package state

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Usage accounting: what each keypair was allocated, started and ended on
// each UTC day, and what agents measured it using. One row per (day,
// keypair), of fixed size, so the table grows with days × active keypairs,
// never with the sessions run.
//
// A row has two tallies of what sessions were allocated and how they
// ended. Held is what the sessions still in the state contributed: it is
// derived from their records, moved by PutSession in the same transaction
// as the record, rebuilt when a snapshot is restored and never written to
// one, so RecomputeUsageDays can check it exactly. Collected is what the
// sessions the leader has since garbage-collected contributed: when a
// session is collected its contribution moves from Held to Collected in the
// entry that removes it, and Collected is replicated (snapshot table 70).
// The measured values (CPU time and peak memory, from the agents' reports)
// cannot be derived from the records: they are replicated as the leader's
// SessionsMeasured entries carry them.
//
// A running session's allocation is not in any row while it runs: its
// record says since when it holds what, and UsageTotals adds it up to the
// time asked. When it ends, its whole life goes into the rows of the days it
// spanned.

// UsageTally is what sessions contributed to one (day, keypair).
type UsageTally struct {
	// Alloc is slot-seconds in each slot's base unit (millicore-seconds,
	// byte-seconds, GPU-seconds, hundredth-share-seconds), in the order of
	// slots.Known: cpu, mem, cuda.device, cuda.shares.
	Alloc [4]int64 `json:"alloc"`
	// Started counts the sessions placed that day (they began to hold
	// slots); Finished those that ended TERMINATED and Failed those that
	// ended ERROR, on the day they ended.
	Started  int64 `json:"started,omitempty"`
	Finished int64 `json:"finished,omitempty"`
	Failed   int64 `json:"failed,omitempty"`
}

func (u UsageTally) zero() bool { return u == UsageTally{} }

// add adds o to u, each field saturating within 0..MaxInt64: a usage
// figure is never negative, and none wraps around.
func (u *UsageTally) add(o UsageTally) {
	for i := range u.Alloc {
		u.Alloc[i] = addClamped(u.Alloc[i], o.Alloc[i])
	}
	u.Started = addClamped(u.Started, o.Started)
	u.Finished = addClamped(u.Finished, o.Finished)
	u.Failed = addClamped(u.Failed, o.Failed)
}

// negated is -u (what taking u out adds).
func (u UsageTally) negated() UsageTally {
	for i := range u.Alloc {
		u.Alloc[i] = -u.Alloc[i]
	}
	u.Started, u.Finished, u.Failed = -u.Started, -u.Finished, -u.Failed
	return u
}

// addClamped is a + b kept within 0..MaxInt64.
func addClamped(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case s < 0:
		return 0
	}
	return s
}

// UsageDay is one keypair's usage on one UTC day.
type UsageDay struct {
	Day       string `json:"day"` // YYYY-MM-DD, UTC
	AccessKey string `json:"access_key"`
	// User and Domain are the keypair's owner and domain when the row was
	// made: a keypair may be deleted, its usage stays whose it was.
	User      string     `json:"user"`
	Domain    string     `json:"domain"`
	Collected UsageTally `json:"collected"`
	// Held is derived (see above): never in a snapshot.
	Held UsageTally `json:"-"`
	// CPUMillis is the CPU time the keypair's sessions used that day, as
	// their agents measured it (milliseconds); PeakMemBytes the largest
	// working set one of its sessions reached that day.
	CPUMillis    int64 `json:"cpu_millis,omitempty"`
	PeakMemBytes int64 `json:"peak_mem_bytes,omitempty"`
}

func (u *UsageDay) id() string { return u.Day + "/" + u.AccessKey }

// empty: the row holds nothing and is removed.
func (u *UsageDay) empty() bool {
	return u.Held.zero() && u.Collected.zero() && u.CPUMillis == 0 && u.PeakMemBytes == 0
}

const tableUsageDays = "usage_days"

// DayLayout is how days are written: in rows, in the usage API.
const DayLayout = "2006-01-02"

func usageDaysTable() Table {
	return Table{Name: tableUsageDays, ID: 70, New: func() any { return new(UsageDay) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			// Day first: a range of days is one scan.
			"id": {Name: "id", Unique: true, Indexer: usageDayIndex{}},
		}}}
}

// usageDayIndex keys a row by "DAY/ACCESS_KEY".
type usageDayIndex struct{}

func (usageDayIndex) FromObject(raw any) (bool, []byte, error) {
	u, ok := raw.(*UsageDay)
	if !ok {
		return false, nil, fmt.Errorf("usage day index: %T is not a usage day", raw)
	}
	return true, append([]byte(u.id()), 0), nil
}

func (usageDayIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("usage day index takes one key, got %d", len(args))
	}
	k, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("usage day index key must be a string, got %T", args[0])
	}
	return append([]byte(k), 0), nil
}

// UsageDayRow returns the row of (day, access key) or nil.
func (t *Txn) UsageDayRow(day, accessKey string) (*UsageDay, error) {
	return first[UsageDay](t, tableUsageDays, "id", day+"/"+accessKey)
}

// EachUsageDay calls f for every row from day from to day to (inclusive,
// YYYY-MM-DD), in day and then access-key order.
func (t *Txn) EachUsageDay(from, to string, f func(*UsageDay) error) error {
	it, err := t.tx.LowerBound(tableUsageDays, "id", from)
	if err != nil {
		return fmt.Errorf("list usage from %s: %w", from, err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		u := raw.(*UsageDay)
		if u.Day > to {
			return nil
		}
		if err := f(u); err != nil {
			return err
		}
	}
	return nil
}

// changeUsageDay applies change to a copy of the row of (day, the
// session's keypair), made if missing, and puts it back (or removes it when
// it holds nothing any more).
func (t *Txn) changeUsageDay(day string, s *Session, change func(*UsageDay)) error {
	old, err := t.UsageDayRow(day, s.AccessKey)
	if err != nil {
		return err
	}
	var n UsageDay
	if old != nil {
		n = *old
	} else {
		n = UsageDay{Day: day, AccessKey: s.AccessKey, User: s.Owner, Domain: s.Domain}
	}
	change(&n)
	if n.empty() {
		if old == nil {
			return nil
		}
		return t.remove(tableUsageDays, old)
	}
	if err := t.tx.Insert(tableUsageDays, &n); err != nil {
		return fmt.Errorf("insert into %s: %w", tableUsageDays, err)
	}
	return nil
}

// SessionUsage is what one session contributes to its keypair's usage, as
// its record says: from when to when it held slots (End zero while it
// still does), at what rate (base units of each slot, slots.Known order),
// and how it ended.
type SessionUsage struct {
	Placed     bool
	Start, End time.Time
	Rate       [4]int64
	Failed     bool // ended ERROR
	Ended      bool
	// Inconsistent says what was wrong with the recorded times, when
	// something was: the session is counted from them as they are (an end
	// before the start counts no time), and the FSM logs it.
	Inconsistent string
}

// same: both contribute the same to every row.
func (u SessionUsage) same(o SessionUsage) bool {
	return u.Placed == o.Placed && u.Start.Equal(o.Start) && u.End.Equal(o.End) && u.Rate == o.Rate &&
		u.Failed == o.Failed && u.Ended == o.Ended
}

// UsageOf is the contribution of a session's record. A session counts from
// its first occupying status (placed: SCHEDULED) to its end
// (terminated_at), at what its containers hold; one never placed
// contributes nothing.
func UsageOf(s *Session) SessionUsage {
	var u SessionUsage
	for _, h := range s.StatusHistory {
		if h.Status.Occupying() {
			u.Placed, u.Start = true, h.At
			break
		}
	}
	if !u.Placed {
		return SessionUsage{}
	}
	for _, c := range s.Containers {
		for i, n := range slots.Known {
			u.Rate[i] = addClamped(u.Rate[i], max(0, c.Slots[n]))
		}
	}
	if !s.Status.Ended() {
		return u
	}
	u.Ended, u.Failed = true, s.Status == api.SessionError
	switch {
	case s.TerminatedAt != nil:
		u.End = *s.TerminatedAt
	case len(s.StatusHistory) > 0:
		u.End = s.StatusHistory[len(s.StatusHistory)-1].At
		u.Inconsistent = "ended without terminated_at: counted to its last status change"
	default:
		u.End = u.Start
	}
	if u.End.Before(u.Start) {
		u.Inconsistent = fmt.Sprintf("terminated_at %s is before it was placed at %s: counted as no time",
			u.End.UTC().Format(time.RFC3339Nano), u.Start.UTC().Format(time.RFC3339Nano))
		u.End = u.Start
	}
	return u
}

// Day is the UTC day of t, as rows name it.
func Day(t time.Time) string { return t.UTC().Format(DayLayout) }

// EachDayOf splits [start, end) at UTC midnights and calls f with each
// day and the nanoseconds of the interval within it.
func EachDayOf(start, end time.Time, f func(day string, ns int64)) {
	start, end = start.UTC(), end.UTC()
	for start.Before(end) {
		y, m, d := start.Date()
		next := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
		stop := end
		if next.Before(end) {
			stop = next
		}
		f(Day(start), int64(stop.Sub(start)))
		start = stop
	}
}

// SlotSeconds is rate base units held for ns nanoseconds, in base-unit
// seconds (rounded down; MaxInt64 where it would not fit).
func SlotSeconds(rate, ns int64) int64 {
	if rate <= 0 || ns <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(rate), uint64(ns))
	if hi >= 1e9 {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, 1e9)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// AllocBetween is what a session holding rate allocates in [start, end)
// by UTC day.
func AllocBetween(rate [4]int64, start, end time.Time, f func(day string, alloc [4]int64)) {
	EachDayOf(start, end, func(day string, ns int64) {
		var a [4]int64
		for i, r := range rate {
			a[i] = SlotSeconds(r, ns)
		}
		f(day, a)
	})
}

// tallies is what a contribution adds to each day's tally.
func (u SessionUsage) tallies() map[string]UsageTally {
	if !u.Placed {
		return nil
	}
	out := map[string]UsageTally{}
	startDay := Day(u.Start)
	t := out[startDay]
	t.Started++
	out[startDay] = t
	if !u.Ended {
		return out
	}
	AllocBetween(u.Rate, u.Start, u.End, func(day string, alloc [4]int64) {
		t := out[day]
		t.Alloc = alloc
		out[day] = t
	})
	endDay := Day(u.End)
	t = out[endDay]
	if u.Failed {
		t.Failed++
	} else {
		t.Finished++
	}
	out[endDay] = t
	return out
}

// accrue moves a session's contribution to the Held tallies from what its
// old version contributed to what the new one does. Most writes of a
// session (container news, activity) change neither, and cost a
// comparison.
func (t *Txn) accrue(old, s *Session) error {
	var was SessionUsage
	if old != nil {
		was = UsageOf(old)
	}
	now := UsageOf(s)
	if was.same(now) {
		return nil
	}
	if now.Inconsistent != "" && t.log != nil {
		t.log.Warn("session times are inconsistent; its usage is counted from them as recorded",
			"session", s.ID, "access_key", s.AccessKey, "problem", now.Inconsistent)
	}
	if old != nil {
		if err := t.addTallies(old, was.tallies(), true, -1); err != nil {
			return err
		}
	}
	return t.addTallies(s, now.tallies(), true, 1)
}

// addTallies adds (sign 1) or takes out (-1) tallies to the rows of the
// session's keypair: to Held, or to Collected.
func (t *Txn) addTallies(s *Session, by map[string]UsageTally, held bool, sign int64) error {
	days := make([]string, 0, len(by))
	for d := range by {
		days = append(days, d)
	}
	slices.Sort(days)
	for _, day := range days {
		delta := by[day]
		if sign < 0 {
			delta = delta.negated()
		}
		err := t.changeUsageDay(day, s, func(u *UsageDay) {
			if held {
				u.Held.add(delta)
			} else {
				u.Collected.add(delta)
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// AddMeasured adds what agents measured of a session on a day: CPU time
// used (milliseconds, ≥ 0) and a working set seen (the day keeps the
// largest).
func (t *Txn) AddMeasured(day string, s *Session, cpuMillis, peakMem int64) error {
	if cpuMillis <= 0 && peakMem <= 0 {
		return nil
	}
	return t.changeUsageDay(day, s, func(u *UsageDay) {
		u.CPUMillis = addClamped(u.CPUMillis, max(0, cpuMillis))
		u.PeakMemBytes = max(u.PeakMemBytes, peakMem)
	})
}

// UsageTotal is one keypair's usage on one day as the usage API reports
// it: everything the rows hold plus, for sessions that still hold slots,
// their allocation up to the time asked.
type UsageTotal struct {
	Day, AccessKey, User, Domain string
	Alloc                        [4]int64
	Started, Finished, Failed    int64
	CPUMillis, PeakMemBytes      int64
}

// UsageTotals is every (day, keypair) total from day from to day to
// (inclusive) whose owner and domain keep accepts, in day and access-key
// order; sessions that still hold slots count up to now.
func (t *Txn) UsageTotals(from, to string, now time.Time, keep func(user, domain string) bool) ([]UsageTotal, error) {
	var out []UsageTotal
	index := map[string]int{}
	err := t.EachUsageDay(from, to, func(u *UsageDay) error {
		if !keep(u.User, u.Domain) {
			return nil
		}
		total := UsageTotal{Day: u.Day, AccessKey: u.AccessKey, User: u.User, Domain: u.Domain,
			CPUMillis: u.CPUMillis, PeakMemBytes: u.PeakMemBytes}
		sum := u.Held
		sum.add(u.Collected)
		total.Alloc, total.Started, total.Finished, total.Failed = sum.Alloc, sum.Started, sum.Finished, sum.Failed
		index[u.id()] = len(out)
		out = append(out, total)
		return nil
	})
	if err != nil {
		return nil, err
	}
	added := false
	for _, st := range api.SessionStatuses() {
		if !st.Occupying() {
			continue
		}
		ss, err := t.SessionsInStatus(st)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			u := UsageOf(s)
			if !u.Placed || !keep(s.Owner, s.Domain) || !now.After(u.Start) {
				continue
			}
			AllocBetween(u.Rate, u.Start, now, func(day string, alloc [4]int64) {
				if day < from || day > to {
					return
				}
				key := day + "/" + s.AccessKey
				i, ok := index[key]
				if !ok {
					i = len(out)
					index[key] = i
					out = append(out, UsageTotal{Day: day, AccessKey: s.AccessKey, User: s.Owner, Domain: s.Domain})
					added = true
				}
				for k := range alloc {
					out[i].Alloc[k] = addClamped(out[i].Alloc[k], alloc[k])
				}
			})
		}
	}
	if added {
		slices.SortFunc(out, func(x, y UsageTotal) int {
			return strings.Compare(x.Day+"/"+x.AccessKey, y.Day+"/"+y.AccessKey)
		})
	}
	return out, nil
}

// RecomputeUsageDays derives every row's Held tally afresh from the
// session records, by row key (DAY/ACCESS_KEY): what the stored Held
// tallies must equal.
func (t *Txn) RecomputeUsageDays() (map[string]UsageTally, error) {
	out := map[string]UsageTally{}
	err := t.EachSession(nil, func(s *Session) error {
		for day, tally := range UsageOf(s).tallies() {
			key := day + "/" + s.AccessKey
			sum := out[key]
			sum.add(tally)
			out[key] = sum
		}
		return nil
	})
	return out, err
}

// UsageDayKey is the drift scope of a usage row: "usage/DAY/ACCESS_KEY".
func UsageDayKey(day, accessKey string) string { return "usage/" + day + "/" + accessKey }

// usageDayDrifts compares every row with the session records: Held with
// RecomputeUsageDays, and what cannot be recomputed (Collected, the
// measured values) with zero from below, since none may be negative.
// want is the recomputation, for the repair.
func (t *Txn) usageDayDrifts() (drifts []UsageDrift, want map[string]UsageTally, rows int, err error) {
	want, err = t.RecomputeUsageDays()
	if err != nil {
		return nil, nil, 0, err
	}
	seen := map[string]bool{}
	it, err := t.tx.Get(tableUsageDays, "id")
	if err != nil {
		return nil, nil, 0, fmt.Errorf("scan %s: %w", tableUsageDays, err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		u := raw.(*UsageDay)
		rows++
		seen[u.id()] = true
		drifts = append(drifts, tallyDrifts(UsageDayKey(u.Day, u.AccessKey), "", u.Held, want[u.id()])...)
		var floor UsageTally
		for i, v := range u.Collected.Alloc {
			floor.Alloc[i] = max(0, v)
		}
		floor.Started, floor.Finished, floor.Failed = max(0, u.Collected.Started), max(0, u.Collected.Finished), max(0, u.Collected.Failed)
		drifts = append(drifts, tallyDrifts(UsageDayKey(u.Day, u.AccessKey), "collected.", u.Collected, floor)...)
		for _, m := range []struct {
			slot string
			v    int64
		}{{"measured.cpu_millis", u.CPUMillis}, {"measured.peak_mem_bytes", u.PeakMemBytes}} {
			if m.v < 0 {
				drifts = append(drifts, UsageDrift{Key: UsageDayKey(u.Day, u.AccessKey), Slot: m.slot, Recorded: m.v, Actual: 0})
			}
		}
	}
	for _, key := range sortedKeys(want) {
		if !seen[key] && !want[key].zero() {
			day, ak, _ := strings.Cut(key, "/")
			drifts = append(drifts, tallyDrifts(UsageDayKey(day, ak), "", UsageTally{}, want[key])...)
		}
	}
	return drifts, want, rows, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// tallyDrifts lists where two tallies differ, slot by slot
// ("allocated.cpu", "sessions.started", …, after prefix).
func tallyDrifts(key, prefix string, have, want UsageTally) []UsageDrift {
	var out []UsageDrift
	for i, n := range slots.Known {
		if have.Alloc[i] != want.Alloc[i] {
			out = append(out, UsageDrift{Key: key, Slot: prefix + "allocated." + string(n), Recorded: have.Alloc[i], Actual: want.Alloc[i]})
		}
	}
	for _, c := range []struct {
		name       string
		have, want int64
	}{{"sessions.started", have.Started, want.Started}, {"sessions.finished", have.Finished, want.Finished}, {"sessions.failed", have.Failed, want.Failed}} {
		if c.have != c.want {
			out = append(out, UsageDrift{Key: key, Slot: prefix + c.name, Recorded: c.have, Actual: c.want})
		}
	}
	return out
}

// UsageDayDrifts is every difference between the usage rows and the
// session records (see usageDayDrifts), and how many rows were checked.
func (t *Txn) UsageDayDrifts() ([]UsageDrift, int, error) {
	d, _, rows, err := t.usageDayDrifts()
	return d, rows, err
}

// RepairUsageDays rewrites every row that differs from the session
// records (the recalculate-usage entry): Held as recomputed, negative
// values as zero. It returns what differed and how many rows it checked.
func (t *Txn) RepairUsageDays() ([]UsageDrift, int, error) {
	drifts, want, rows, err := t.usageDayDrifts()
	if err != nil || len(drifts) == 0 {
		return drifts, rows, err
	}
	for _, key := range driftKeys(drifts) {
		day, ak, _ := strings.Cut(strings.TrimPrefix(key, "usage/"), "/")
		old, err := t.UsageDayRow(day, ak)
		if err != nil {
			return nil, 0, err
		}
		var n UsageDay
		if old != nil {
			n = *old
		} else {
			// A row the records need and the table lacks: its owner is
			// the owner of any of the keypair's sessions that day.
			n = UsageDay{Day: day, AccessKey: ak}
			if err := t.EachSession(func(s *Session) bool { return s.AccessKey == ak }, func(s *Session) error {
				n.User, n.Domain = s.Owner, s.Domain
				return nil
			}); err != nil {
				return nil, 0, err
			}
		}
		n.Held = want[day+"/"+ak]
		fix := func(v *int64) { *v = max(0, *v) }
		for i := range n.Collected.Alloc {
			fix(&n.Collected.Alloc[i])
		}
		fix(&n.Collected.Started)
		fix(&n.Collected.Finished)
		fix(&n.Collected.Failed)
		fix(&n.CPUMillis)
		fix(&n.PeakMemBytes)
		if n.empty() {
			if old != nil {
				if err := t.remove(tableUsageDays, old); err != nil {
					return nil, 0, err
				}
			}
			continue
		}
		if err := t.tx.Insert(tableUsageDays, &n); err != nil {
			return nil, 0, fmt.Errorf("insert into %s: %w", tableUsageDays, err)
		}
	}
	return drifts, rows, nil
}

// SetUsageDay overwrites a row as it is (tests inject drift with it;
// nothing else may write usage rows).
func (t *Txn) SetUsageDay(u *UsageDay) error {
	if err := t.tx.Insert(tableUsageDays, u); err != nil {
		return fmt.Errorf("insert into %s: %w", tableUsageDays, err)
	}
	return nil
}

// insertUsageDay restores a row from a snapshot: its replicated part,
// beside the Held tally the sessions restored before it may have built.
func (t *Txn) insertUsageDay(u *UsageDay) error {
	old, err := t.UsageDayRow(u.Day, u.AccessKey)
	if err != nil {
		return err
	}
	if old != nil {
		u.Held = old.Held
	}
	return t.SetUsageDay(u)
}
