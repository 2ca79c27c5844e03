package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/imageref"
	"github.com/berth-cluster/berth/shared/slots"
)

// The maxima of the reference manual's resource policy dialog, enforced
// here whatever client sends the request.
const (
	policyMaxCPU          = 512
	policyMaxMemGiB       = 1024
	policyMaxGPUs         = 64
	policyMaxShares       = 256
	policyMaxContainers   = 100
	policyMaxIdleTimeout  = 15552000 // 180 days
	policyMaxConcurrent   = 100
	policyMaxVfolderSize  = int64(1024) << 30
	policyMaxVfolderCount = 50
	// policyMaxVfolderHosts is not in the manual: it keeps a policy, and the list
	// of reasons about a bad one, to a size a person can read.
	policyMaxVfolderHosts = 100
)

// Defaults of a policy created without the field.
const (
	policyDefaultContainers = 1
	// policyMaxDisconnect bounds max_disconnect: 30 days, far past any
	// grace a manager would be given (the smaller of the two applies).
	policyMaxDisconnect       = 30 * 24 * 3600
	policyDefaultVfolderCount = 10
)

// policyBody is a POST or PATCH body read field by field: a nil pointer is
// a field that was absent, and the fsm.Nullable fields tell "absent" from
// "null". Slots holds the slots named, a nil amount being null (unlimited).
type policyBody struct {
	Name                    *string
	Slots                   map[slots.Name]*int64
	MaxContainersPerSession *int
	IdleTimeout             *int64
	MaxConcurrentSessions   *fsm.Nullable[int]
	MaxSessionLifetime      *fsm.Nullable[int64]
	AllowedVfolderHosts     *[]string
	MaxVfolderSize          *fsm.Nullable[int64]
	MaxVfolderCount         *int
	AllowRoot               *bool
	AllowedImages           *[]string
	AllowEgress             *bool
	MaxDisconnect           *fsm.Nullable[int64]
}

// policyField reads one field's raw JSON into the body, recording every
// violated rule.
type policyField struct {
	name string
	read func(b *policyBody, raw json.RawMessage, bad *apierr.Fields)
}

// policyFields lists the fields a request may carry, in the order their
// errors are reported.
func policyFields() []policyField {
	return []policyField{
		{"name", func(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				bad.Add("name", "name must be a string")
				return
			}
			b.Name = &s
		}},
		{"total_resource_slots", readPolicySlots},
		{"max_containers_per_session", func(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
			if v, ok := jsonWholeIn(raw, 1, policyMaxContainers); ok {
				b.MaxContainersPerSession = intPtr(v)
				return
			}
			bad.Add("max_containers_per_session", "max_containers_per_session must be a whole number from 1 to %d", policyMaxContainers)
		}},
		{"idle_timeout", func(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
			if v, ok := jsonWholeIn(raw, 0, policyMaxIdleTimeout); ok {
				b.IdleTimeout = &v
				return
			}
			bad.Add("idle_timeout", "idle_timeout must be a whole number of seconds from 0 (never) to %d (180 days)", policyMaxIdleTimeout)
		}},
		{"max_concurrent_sessions", func(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
			if jsonNull(raw) {
				b.MaxConcurrentSessions = &fsm.Nullable[int]{}
				return
			}
			if v, ok := jsonWholeIn(raw, 1, policyMaxConcurrent); ok {
				b.MaxConcurrentSessions = &fsm.Nullable[int]{Value: intPtr(v)}
				return
			}
			if v, ok := jsonWhole(raw); ok && v == 0 {
				bad.Add("max_concurrent_sessions", "max_concurrent_sessions must be from 1 to %d; 0 is not read as unlimited: send null for unlimited", policyMaxConcurrent)
				return
			}
			bad.Add("max_concurrent_sessions", "max_concurrent_sessions must be a whole number from 1 to %d, or null for unlimited", policyMaxConcurrent)
		}},
		{"max_session_lifetime", func(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
			b.MaxSessionLifetime = nullableWhole(raw, 0, math.MaxInt64, bad, "max_session_lifetime",
				"max_session_lifetime must be a whole number of seconds, 0 or more (0: no limit), or null for no limit")
		}},
		{"max_disconnect", func(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
			b.MaxDisconnect = nullableWhole(raw, 0, policyMaxDisconnect, bad, "max_disconnect",
				fmt.Sprintf("max_disconnect must be a whole number of seconds from 0 to %d (30 days), or null for the managers' -disconnect-grace", policyMaxDisconnect))
		}},
		{"allowed_vfolder_hosts", readPolicyHosts},
		{"max_vfolder_size", func(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
			b.MaxVfolderSize = nullableWhole(raw, 0, policyMaxVfolderSize, bad, "max_vfolder_size",
				fmt.Sprintf("max_vfolder_size must be a whole number of bytes from 0 to %d (1024 GiB), or null for unlimited", policyMaxVfolderSize))
		}},
		{"max_vfolder_count", func(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
			if v, ok := jsonWholeIn(raw, 0, policyMaxVfolderCount); ok {
				b.MaxVfolderCount = intPtr(v)
				return
			}
			bad.Add("max_vfolder_count", "max_vfolder_count must be a whole number from 0 to %d", policyMaxVfolderCount)
		}},
		{"allow_root", func(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
			var v bool
			if jsonNull(raw) || json.Unmarshal(raw, &v) != nil {
				bad.Add("allow_root", "allow_root must be true or false")
				return
			}
			b.AllowRoot = &v
		}},
		{"allowed_images", readPolicyImages},
		{"allow_egress", func(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
			var v bool
			if jsonNull(raw) || json.Unmarshal(raw, &v) != nil {
				bad.Add("allow_egress", "allow_egress must be true or false")
				return
			}
			b.AllowEgress = &v
		}},
	}
}

// decodePolicyBody reads a policy request and checks every rule about the
// request alone, reporting all violations at once. pathName is the policy a
// PATCH changes, "" for a create. Rules about the state (the name is taken,
// the policy is in use) are the FSM's.
func decodePolicyBody(body []byte, pathName string) (*policyBody, error) {
	var raw map[string]json.RawMessage
	if err := DecodeJSON(body, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, apierr.New(apierr.Invalid, "the request body must be a JSON object, not null")
	}
	b := &policyBody{}
	var bad apierr.Fields
	known := map[string]bool{}
	for _, f := range policyFields() {
		known[f.name] = true
		if v, ok := raw[f.name]; ok {
			f.read(b, v, &bad)
		}
	}
	// A name that is not a string has its reason already.
	if _, sent := raw["name"]; b.Name != nil || (pathName == "" && !sent) {
		checkPolicyName(b.Name, pathName, &bad)
	}
	var unknown []string
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		// Fields of every policy the API returns: a client that sends one
		// back is told it cannot set it rather than that it is unknown.
		if k == "created_at" || k == "modified_at" || k == "max_disconnect_effective" {
			bad.Add(k, "%s is set by the manager; leave it out", k)
			continue
		}
		bad.Add(k, "unknown field %q", k)
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	return b, nil
}

// checkPolicyName holds a new policy's name to a safe alphabet (it appears in
// URL paths, CSV cells and CLI arguments), and a PATCH's to the path's: the
// name is the primary key.
func checkPolicyName(name *string, pathName string, bad *apierr.Fields) {
	switch {
	case pathName != "":
		if *name != pathName {
			bad.Add("name", "the name is the policy's primary key and cannot be changed; create a new policy and move the keypairs to it")
		}
	case name == nil || *name == "":
		bad.Add("name", "name is required")
	case utf8.RuneCountInString(*name) > maxNameLen:
		bad.Add("name", "name must be at most %d characters", maxNameLen)
	case !policyNameChars(*name):
		bad.Add("name", "name may contain only letters, digits, '.', '_' and '-'")
	case *name == "." || *name == "..":
		bad.Add("name", "name must not be . or .., which cannot appear in a URL path")
	}
}

func policyNameChars(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return s != ""
}

// newPolicy is the policy a create request describes, with the defaults
// for absent fields: unlimited slots, 1 container per session, no idle
// timeout, unlimited concurrent sessions and lifetime, no folder hosts,
// unlimited folder size, 10 folders, no root in containers, egress allowed.
func (b *policyBody) newPolicy(now time.Time) state.ResourcePolicy {
	p := api.ResourcePolicy{Name: *b.Name, TotalResourceSlots: slots.Limits{},
		MaxContainersPerSession: policyDefaultContainers, MaxVfolderCount: policyDefaultVfolderCount,
		AllowedVfolderHosts: []string{}, CreatedAt: now, ModifiedAt: now}
	for n, v := range b.Slots {
		if v != nil {
			p.TotalResourceSlots[n] = *v
		}
	}
	setIfSent(&p.MaxContainersPerSession, b.MaxContainersPerSession)
	setIfSent(&p.IdleTimeout, b.IdleTimeout)
	if b.MaxConcurrentSessions != nil {
		p.MaxConcurrentSessions = b.MaxConcurrentSessions.Value
	}
	if b.MaxSessionLifetime != nil {
		p.MaxSessionLifetime = b.MaxSessionLifetime.Value
	}
	setIfSent(&p.AllowedVfolderHosts, b.AllowedVfolderHosts)
	if b.MaxVfolderSize != nil {
		p.MaxVfolderSize = b.MaxVfolderSize.Value
	}
	if b.MaxDisconnect != nil {
		p.MaxDisconnect = b.MaxDisconnect.Value
	}
	setIfSent(&p.MaxVfolderCount, b.MaxVfolderCount)
	setIfSent(&p.AllowRoot, b.AllowRoot)
	p.AllowedImages = []string{}
	setIfSent(&p.AllowedImages, b.AllowedImages)
	egress := b.AllowEgress == nil || *b.AllowEgress
	p.AllowEgress = &egress
	return state.ResourcePolicy{ResourcePolicy: p}
}

func setIfSent[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// update is the log entry a PATCH of the named policy describes.
func (b *policyBody) update(name string, now time.Time) (fsm.PolicyUpdate, error) {
	u := fsm.PolicyUpdate{Name: name, ModifiedAt: now, Slots: b.Slots,
		MaxContainersPerSession: b.MaxContainersPerSession, IdleTimeout: b.IdleTimeout,
		MaxConcurrentSessions: b.MaxConcurrentSessions, MaxSessionLifetime: b.MaxSessionLifetime,
		AllowedVfolderHosts: b.AllowedVfolderHosts, MaxVfolderSize: b.MaxVfolderSize,
		MaxVfolderCount: b.MaxVfolderCount, AllowRoot: b.AllowRoot, AllowEgress: b.AllowEgress, AllowedImages: b.AllowedImages,
		MaxDisconnect: b.MaxDisconnect}
	if u.Slots == nil && u.MaxContainersPerSession == nil && u.IdleTimeout == nil && u.MaxConcurrentSessions == nil &&
		u.MaxSessionLifetime == nil && u.AllowedVfolderHosts == nil && u.MaxVfolderSize == nil && u.MaxVfolderCount == nil &&
		u.AllowRoot == nil && u.AllowEgress == nil && u.AllowedImages == nil && u.MaxDisconnect == nil {
		return fsm.PolicyUpdate{}, apierr.New(apierr.Invalid, "the request changes nothing; send at least one field to change")
	}
	return u, nil
}

// policySlotRule is how one slot of total_resource_slots is checked: its most in
// wire units, the unit a person reads, and what its precision is.
type policySlotRule struct {
	max       int64
	unit      string
	precision string
}

func policySlotRules() map[slots.Name]policySlotRule {
	return map[slots.Name]policySlotRule{
		slots.CPU:        {policyMaxCPU, "cores", "at most 3 decimals (0.001 core)"},
		slots.Mem:        {policyMaxMemGiB << 30, "bytes (1024 GiB)", "a whole number of bytes"},
		slots.CUDADevice: {policyMaxGPUs, "GPUs", "a whole number of GPUs"},
		slots.CUDAShares: {policyMaxShares, "fGPU shares", "at most 2 decimals (0.01 share)"},
	}
}

func readPolicySlots(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
	rules := policySlotRules()
	b.Slots = map[slots.Name]*int64{}
	if jsonNull(raw) {
		// null: every slot unlimited, like an empty object on create.
		for _, n := range slots.Known {
			b.Slots[n] = nil
		}
		return
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		bad.Add("total_resource_slots", "total_resource_slots must be an object keyed by slot (%s), each a number or null for unlimited", knownSlotNames())
		return
	}
	for _, key := range sortedFieldNames(m) {
		field := "total_resource_slots." + key
		n := slots.Name(key)
		rule, ok := rules[n]
		if !ok {
			bad.Add(field, "unknown slot %q; the slots are %s", key, knownSlotNames())
			continue
		}
		v := m[key]
		if jsonNull(v) {
			b.Slots[n] = nil
			continue
		}
		r, isNum := jsonNumber(v)
		switch {
		case !isNum:
			bad.Add(field, "%s must be a number of %s, or null for unlimited", field, strings.Fields(rule.unit)[0])
		case r.Sign() < 0:
			bad.Add(field, "%s must not be negative", field)
		case r.Cmp(new(big.Rat).SetInt64(rule.max)) > 0:
			bad.Add(field, "%s must be at most %d %s", field, rule.max, rule.unit)
		default:
			// The exact rational, not the request's text, so an exponent
			// beyond numberMaxExponent is never expanded.
			q, err := slots.Parse(n, r.RatString())
			if err != nil {
				bad.Add(field, "%s must be %s", field, rule.precision)
				continue
			}
			b.Slots[n] = &q
		}
	}
}

// policyMaxImages bounds allowed_images, for the same reason as
// policyMaxVfolderHosts.
const policyMaxImages = 100

// readPolicyImages reads allowed_images: glob patterns over an image
// reference's full form (imageref); null or [] allows any image.
func readPolicyImages(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
	const field = "allowed_images"
	patterns := []string{}
	if !jsonNull(raw) && json.Unmarshal(raw, &patterns) != nil {
		bad.Add(field, "allowed_images must be a list of image patterns, e.g. [\"registry.example.com/lab/*\"] ([] allows any image)")
		return
	}
	if patterns == nil {
		patterns = []string{}
	}
	if len(patterns) > policyMaxImages {
		bad.Add(field, "allowed_images may list at most %d patterns", policyMaxImages)
		return
	}
	ok := true
	seen := map[string]bool{}
	for _, p := range patterns {
		if err := imageref.CheckPattern(p); err != nil {
			bad.Add(field, "%s", err.Error())
			ok = false
		} else if seen[p] {
			bad.Add(field, "pattern %s is listed twice", p)
			ok = false
		}
		seen[p] = true
	}
	if ok {
		b.AllowedImages = &patterns
	}
}

func readPolicyHosts(b *policyBody, raw json.RawMessage, bad *apierr.Fields) {
	const field = "allowed_vfolder_hosts"
	hosts := []string{}
	if !jsonNull(raw) && json.Unmarshal(raw, &hosts) != nil {
		bad.Add(field, "allowed_vfolder_hosts must be a list of folder host names")
		return
	}
	if hosts == nil {
		hosts = []string{}
	}
	if len(hosts) > policyMaxVfolderHosts {
		bad.Add(field, "allowed_vfolder_hosts may list at most %d hosts", policyMaxVfolderHosts)
		return
	}
	ok := true
	seen := map[string]bool{}
	for _, h := range hosts {
		switch {
		case h == "" || utf8.RuneCountInString(h) > maxNameLen || !policyNameChars(h):
			bad.Add(field, "host name %q must be 1 to %d letters, digits, '.', '_' or '-'", h, maxNameLen)
			ok = false
		case seen[h]:
			bad.Add(field, "host %s is listed twice", h)
			ok = false
		}
		seen[h] = true
	}
	if ok {
		b.AllowedVfolderHosts = &hosts
	}
}

// nullableWhole reads null or a whole number in [lo, hi].
func nullableWhole(raw json.RawMessage, lo, hi int64, bad *apierr.Fields, field, reason string) *fsm.Nullable[int64] {
	if jsonNull(raw) {
		return &fsm.Nullable[int64]{}
	}
	if v, ok := jsonWholeIn(raw, lo, hi); ok {
		return &fsm.Nullable[int64]{Value: &v}
	}
	bad.Add(field, "%s", reason)
	return nil
}

func jsonNull(raw json.RawMessage) bool { return strings.TrimSpace(string(raw)) == "null" }

// intPtr narrows a value already checked to be small.
func intPtr(v int64) *int {
	n := int(v)
	return &n
}

func sortedFieldNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func knownSlotNames() string {
	names := make([]string, len(slots.Known))
	for i, n := range slots.Known {
		names[i] = string(n)
	}
	return strings.Join(names, ", ")
}
