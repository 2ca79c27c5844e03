package httpapi

import (
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// GET /v1/usage and its CSV: the usage rows of the replicated state
// (state/usage_days.go), one per UTC day and keypair, with the running
// sessions counted up to now, kept to what the caller reaches
// (canSeeUsageOf) and then rolled up per user, group, domain or keypair and
// per day or month.

// Bounds of a usage query: a day-step answer has at most a row per day per
// key, so its span is bounded; a month-step one reads the same rows.
const (
	maxUsageDays   = 400
	maxUsageMonths = 120
	// defaultUsageDays is the span when from is not given.
	defaultUsageDays = 30
)

// usageQuery is a checked usage query.
type usageQuery struct {
	from, to time.Time // days, UTC
	groupBy  string
	step     string
}

// parseUsageQuery reads from, to, group_by and step, reporting every
// problem at once.
func parseUsageQuery(c *Call, now time.Time) (usageQuery, error) {
	q := c.R.URL.Query()
	var bad apierr.Fields
	out := usageQuery{groupBy: q.Get("group_by"), step: q.Get("step")}
	if out.groupBy == "" {
		out.groupBy = api.UsageByUser
	}
	if out.step == "" {
		out.step = api.UsageStepDay
	}
	groupings := []string{api.UsageByUser, api.UsageByGroup, api.UsageByDomain, api.UsageByKeypair}
	if !slices.Contains(groupings, out.groupBy) {
		bad.Add("group_by", "group_by must be one of %s, not %q", strings.Join(groupings, ", "), out.groupBy)
	}
	if out.step != api.UsageStepDay && out.step != api.UsageStepMonth {
		bad.Add("step", "step must be day or month, not %q", out.step)
	}
	day := func(field, raw string, def time.Time) time.Time {
		if raw == "" {
			return def
		}
		d, err := time.Parse(state.DayLayout, raw)
		if err != nil {
			bad.Add(field, "%s must be a date as YYYY-MM-DD (UTC), not %q", field, raw)
			return time.Time{}
		}
		return d
	}
	today := now.UTC().Truncate(24 * time.Hour)
	out.to = day("to", q.Get("to"), today)
	out.from = day("from", q.Get("from"), out.to.AddDate(0, 0, -(defaultUsageDays-1)))
	if !out.from.IsZero() && !out.to.IsZero() {
		switch {
		case out.from.After(out.to):
			bad.Add("from", "from (%s) is after to (%s)", out.from.Format(state.DayLayout), out.to.Format(state.DayLayout))
		case out.step == api.UsageStepDay && out.to.Sub(out.from) >= maxUsageDays*24*time.Hour:
			bad.Add("to", "a day-step query spans at most %d days (this one %d); narrow from and to, or ask step=month",
				maxUsageDays, int(out.to.Sub(out.from)/(24*time.Hour))+1)
		case out.step == api.UsageStepMonth && monthsBetween(out.from, out.to) > maxUsageMonths:
			bad.Add("to", "a month-step query spans at most %d months (this one %d); narrow from and to",
				maxUsageMonths, monthsBetween(out.from, out.to))
		}
	}
	return out, bad.Err()
}

func monthsBetween(from, to time.Time) int {
	return (to.Year()-from.Year())*12 + int(to.Month()-from.Month()) + 1
}

// usageSum is one item while it is summed: big integers, since a month of
// a domain's memory in byte-seconds is past int64.
type usageSum struct {
	period, key               string
	alloc                     [4]big.Int
	started, finished, failed int64
	cpuMillis                 big.Int
	peakMem                   int64
}

// usageItems reads the caller's usage and rolls it up.
func (a *API) usageItems(c *Call, q usageQuery) ([]api.UsageItem, error) {
	tx := a.cluster.Read()
	now := a.now().UTC()
	reach := map[[2]string]bool{}
	keep := func(user, domain string) bool {
		k := [2]string{user, domain}
		ok, seen := reach[k]
		if !seen {
			ok = canSeeUsageOf(c.Who, tx, domain, user)
			reach[k] = ok
		}
		return ok
	}
	totals, err := tx.UsageTotals(q.from.Format(state.DayLayout), q.to.Format(state.DayLayout), now, keep)
	if err != nil {
		return nil, err
	}
	groups := map[string][]string{} // by user: the groups the user is in now
	sums := map[[2]string]*usageSum{}
	for _, t := range totals {
		period := t.Day
		if q.step == api.UsageStepMonth {
			period = t.Day[:len("2006-01")]
		}
		var keys []string
		switch q.groupBy {
		case api.UsageByUser:
			keys = []string{t.User}
		case api.UsageByKeypair:
			keys = []string{t.AccessKey}
		case api.UsageByDomain:
			keys = []string{t.Domain}
		case api.UsageByGroup:
			gs, ok := groups[t.User]
			if !ok {
				u, err := tx.User(t.User)
				if err != nil {
					return nil, err
				}
				if u != nil {
					for _, g := range u.Groups {
						gs = append(gs, u.Domain+"/"+g)
					}
				}
				if len(gs) == 0 {
					gs = []string{t.Domain + "/"}
				}
				groups[t.User] = gs
			}
			keys = gs
		}
		for _, key := range keys {
			s := sums[[2]string{period, key}]
			if s == nil {
				s = &usageSum{period: period, key: key}
				sums[[2]string{period, key}] = s
			}
			for i, v := range t.Alloc {
				s.alloc[i].Add(&s.alloc[i], big.NewInt(v))
			}
			s.started += t.Started
			s.finished += t.Finished
			s.failed += t.Failed
			s.cpuMillis.Add(&s.cpuMillis, big.NewInt(t.CPUMillis))
			s.peakMem = max(s.peakMem, t.PeakMemBytes)
		}
	}
	ordered := make([]*usageSum, 0, len(sums))
	for _, s := range sums {
		ordered = append(ordered, s)
	}
	slices.SortFunc(ordered, func(x, y *usageSum) int {
		if c := strings.Compare(x.period, y.period); c != 0 {
			return c
		}
		return strings.Compare(x.key, y.key)
	})
	out := make([]api.UsageItem, 0, len(ordered))
	for _, s := range ordered {
		out = append(out, api.UsageItem{Period: s.period, GroupBy: q.groupBy, Key: s.key,
			Allocated: api.UsageAllocated{CPU: baseUnits(slots.CPU, &s.alloc[0]), Mem: baseUnits(slots.Mem, &s.alloc[1]),
				CUDADevice: baseUnits(slots.CUDADevice, &s.alloc[2]), CUDAShares: baseUnits(slots.CUDAShares, &s.alloc[3])},
			Sessions: api.UsageSessions{Started: s.started, Finished: s.finished, Failed: s.failed},
			Measured: api.UsageMeasured{CPUSeconds: decimal(&s.cpuMillis, 1000), PeakMemBytes: s.peakMem}})
	}
	return out, nil
}

// baseUnits writes an amount in a slot's base units in its wire unit.
func baseUnits(n slots.Name, v *big.Int) json.Number {
	sc := map[slots.Name]int64{slots.CPU: 1000, slots.CUDAShares: 100}[n]
	return decimal(v, max(sc, 1))
}

// decimal is v / scale as a decimal without trailing zeros.
func decimal(v *big.Int, scale int64) json.Number {
	if scale == 1 {
		return json.Number(v.String())
	}
	digits := len(strconv.FormatInt(scale, 10)) - 1
	text := new(big.Rat).SetFrac(v, big.NewInt(scale)).FloatString(digits)
	if strings.Contains(text, ".") {
		text = strings.TrimRight(strings.TrimRight(text, "0"), ".")
	}
	return json.Number(text)
}

// usage is GET /v1/usage.
func (a *API) usage(c *Call) error {
	q, err := parseUsageQuery(c, a.now())
	if err != nil {
		return err
	}
	items, err := a.usageItems(c, q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.Usage{Items: items})
}

var usageColumns = []string{"period", "group_by", "key", "allocated.cpu", "allocated.mem", "allocated.cuda.device", "allocated.cuda.shares",
	"sessions.started", "sessions.finished", "sessions.failed", "measured.cpu_seconds", "measured.peak_mem_bytes"}

// exportUsage is GET /v1/export/usage.csv: the same items, one row each,
// the maps flattened.
func (a *API) exportUsage(c *Call) error {
	q, err := parseUsageQuery(c, a.now())
	name, nameErr := exportFilename(c.R.URL.Query().Get("filename"), "usage.csv")
	if err != nil || nameErr != nil {
		return joinFieldErrors(err, nameErr)
	}
	items, err := a.usageItems(c, q)
	if err != nil {
		return err
	}
	return c.csvExport(name, usageColumns, func(row func([]string) error) error {
		for _, it := range items {
			if err := row([]string{it.Period, it.GroupBy, it.Key, it.Allocated.CPU.String(), it.Allocated.Mem.String(),
				it.Allocated.CUDADevice.String(), it.Allocated.CUDAShares.String(), strconv.FormatInt(it.Sessions.Started, 10),
				strconv.FormatInt(it.Sessions.Finished, 10), strconv.FormatInt(it.Sessions.Failed, 10),
				it.Measured.CPUSeconds.String(), strconv.FormatInt(it.Measured.PeakMemBytes, 10)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// joinFieldErrors is one validation error with every field error of errs
// (nil ones skipped), so a query and a file name are refused together.
func joinFieldErrors(errs ...error) error {
	var all apierr.Fields
	for _, err := range errs {
		if err == nil {
			continue
		}
		e, ok := err.(*apierr.Error)
		if !ok || len(e.Fields) == 0 {
			return err
		}
		all = append(all, e.Fields...)
	}
	return all.Err()
}
