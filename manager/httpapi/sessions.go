package httpapi

import (
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/sched"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/ids"
	"github.com/berth-cluster/berth/shared/imageref"
	"github.com/berth-cluster/berth/shared/slots"
)

// sessionCreateBody is POST /v1/sessions as it arrives: resources and
// cluster_size stay raw so that every bad value is reported at once (the
// slots decoder stops at the first one and folds absent into zero).
type sessionCreateBody struct {
	Name        string                         `json:"name"`
	Image       string                         `json:"image"`
	Type        string                         `json:"type"`
	Command     []string                       `json:"command"`
	Resources   map[slots.Name]json.RawMessage `json:"resources"`
	ClusterSize json.RawMessage                `json:"cluster_size"`
	Mounts      []string                       `json:"mounts"`
	Env         map[string]string              `json:"env"`
	RunAsRoot   bool                           `json:"run_as_root"`
	Ports       []sessionPortBody              `json:"ports"`
}

// sessionRequest is a request that passed the checks of its shape.
type sessionRequest struct {
	body        sessionCreateBody
	resources   slots.Slots // per container
	clusterSize int
	mounts      []api.Mount
	ports       []api.SessionPort
}

// envKey is what a POSIX shell accepts as a variable name.
var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// createSession is POST /v1/sessions. Everything the request alone decides
// is checked here, all at once: its shape (400), then whether it could ever
// run — within the policy totals and on some alive agent, with an image one
// of them has (422). What depends on the moment (is there room now?) is the
// scheduler's; the session waits PENDING until then.
func (a *API) createSession(c *Call) error {
	var body sessionCreateBody
	if err := c.Decode(&body); err != nil {
		return err
	}
	tx := a.cluster.Read()
	kp := c.Who.Keypair
	if kp == nil {
		var err error
		if kp, err = loginKeypair(tx, c.Who.User.Email); err != nil {
			return err
		}
	}
	policy, err := tx.ResourcePolicy(kp.ResourcePolicy)
	if err != nil {
		return err
	}
	if policy == nil {
		return fmt.Errorf("keypair %s refers to resource policy %s, which does not exist", kp.AccessKey, kp.ResourcePolicy)
	}
	if body.RunAsRoot && !policy.AllowRoot {
		// The FSM decides again at apply time (the policy may change
		// meanwhile); this answer spares the scheduler a doomed request.
		return fsm.RootNotAllowed(policy.Name)
	}
	req, shape := checkSessionShape(body)
	mounts, err := resolveMounts(tx, c.Who, body.Mounts, &shape)
	if err != nil {
		return err
	}
	req.mounts = mounts
	// Walked lazily: with many agents the first that has the image and
	// the room usually ends the walk (the admission benchmark has 1,000).
	agents, err := tx.AgentSeq()
	if err != nil {
		return err
	}
	fit := checkSessionFit(req, policy, agents, kp.AccessKey)
	if len(shape) == 0 {
		if why := a.checkImage(c.R.Context(), tx, policy, body.Image, agents); why != "" {
			fit = append(apierr.Fields{{Field: "image", Reason: why}}, fit...)
		}
	}
	if err := sessionProblems(shape, fit); err != nil {
		return err
	}
	s, err := a.newSession(req, c.Who.User, kp)
	if err != nil {
		return err
	}
	resp, err := a.cluster.ProposeSessionCreate(c.R.Context(), *s)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return err
	}
	if s, err = fsm.Value[*state.Session](resp); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, sessionView(a.cluster.Read(), s))
}

// checkSessionShape checks what the request says by itself.
func checkSessionShape(b sessionCreateBody) (*sessionRequest, apierr.Fields) {
	var bad apierr.Fields
	req := &sessionRequest{body: b, clusterSize: 1}
	switch n := utf8.RuneCountInString(b.Name); {
	case n > maxNameLen:
		bad.Add("name", "name must be at most %d characters", maxNameLen)
	case strings.IndexFunc(b.Name, unicode.IsControl) >= 0:
		bad.Add("name", "name must not contain control characters")
	}
	if strings.TrimSpace(b.Image) == "" {
		bad.Add("image", "image is required: the name of an image the agents have, e.g. berth/base:latest")
	} else if _, err := imageref.Parse(b.Image); err != nil {
		bad.Add("image", "%s", err.Error())
	}
	switch b.Type {
	case api.SessionInteractive, api.SessionBatch:
	default:
		bad.Add("type", "type must be interactive or batch")
	}
	switch {
	case b.Type == api.SessionBatch && len(b.Command) == 0:
		bad.Add("command", "a batch session needs a command to run")
	case len(b.Command) > 0 && b.Command[0] == "":
		bad.Add("command", "command must start with the program to run")
	}
	req.resources = checkResources(b.Resources, &bad)
	req.ports = checkPorts(b.Ports, &bad)
	if len(b.ClusterSize) > 0 && string(b.ClusterSize) != "null" {
		n, ok := jsonWholeIn(b.ClusterSize, 1, 1<<20)
		if !ok {
			bad.Add("cluster_size", "cluster_size must be a whole number of containers, at least 1")
		} else {
			req.clusterSize = int(n)
		}
	}
	for _, k := range sortedStrings(b.Env) {
		if !envKey.MatchString(k) {
			bad.Add("env", "env name %q must be letters, digits and _, not starting with a digit", k)
		}
		if strings.ContainsRune(b.Env[k], 0) {
			bad.Add("env", "env %s must not contain a NUL character", k)
		}
	}
	return req, bad
}

// checkResources reads the per-container request: cpu and mem are
// required and positive; one GPU kind at most.
func checkResources(raw map[slots.Name]json.RawMessage, bad *apierr.Fields) slots.Slots {
	out := slots.Slots{}
	broken := map[slots.Name]bool{} // already reported: one reason per slot is enough
	if raw == nil {
		bad.Add("resources", "resources is required: at least cpu (cores) and mem (bytes) per container")
		return out
	}
	for _, n := range sortedNames(raw) {
		field := "resources." + string(n)
		var num json.Number
		v := raw[n]
		if string(v) == "null" {
			continue
		}
		if len(v) == 0 || v[0] == '"' || json.Unmarshal(v, &num) != nil {
			bad.Add(field, "%s must be a number", field)
			broken[n] = true
			continue
		}
		q, err := slots.Parse(n, num.String())
		if err != nil {
			bad.Add(field, "%s", err.Error())
			broken[n] = true
			continue
		}
		if q > 0 {
			out[n] = q
		}
	}
	for _, n := range []slots.Name{slots.CPU, slots.Mem} {
		if out[n] <= 0 && !broken[n] {
			if _, given := raw[n]; given {
				bad.Add("resources."+string(n), "resources.%s must be more than 0", n)
			} else {
				bad.Add("resources."+string(n), "resources.%s is required", n)
			}
		}
	}
	if out[slots.CUDADevice] > 0 && out[slots.CUDAShares] > 0 {
		bad.Add("resources", "ask for cuda.device (whole GPUs) or cuda.shares (fractions), not both")
	}
	return out
}

// checkSessionFit checks the request against what could ever hold it: the
// keypair's policy and the alive, schedulable agents with nothing running.
// Whether it fits is the scheduler's answer (sched.Admission: its own
// predicates on an empty cluster), so what is accepted here is what the
// scheduler places on an idle cluster; the words are this API's.
func checkSessionFit(req *sessionRequest, p *state.ResourcePolicy, agents iter.Seq[*state.Agent], accessKey string) apierr.Fields {
	var bad apierr.Fields
	r := sched.RequestOf(&state.Session{AccessKey: accessKey, Image: req.body.Image, Requested: req.resources, ClusterSize: req.clusterSize, Mounts: req.mounts})
	for _, f := range sched.Admission(p, agents, r) {
		unfit(&bad, f, req.resources, p.Name)
	}
	return bad
}

// unfit words one of sched.Admission's reasons as a field error.
func unfit(bad *apierr.Fields, f *sched.Failure, per slots.Slots, policy string) {
	switch f.Rule {
	case sched.RuleContainers:
		bad.Add("cluster_size", "cluster_size %d > %d containers per session allowed by policy %s", f.Have, f.Limit, policy)
	case sched.RuleConcurrency:
		bad.Add("max_concurrent_sessions", "policy %s allows %d concurrent sessions: no session can run; an administrator must raise max_concurrent_sessions", policy, f.Limit)
	case sched.RulePolicySlots:
		for _, o := range f.Over {
			bad.Add("resources."+string(o.Slot), "%s %s > %s allowed by policy %s", o.Slot, slots.Format(o.Slot, o.Need), slots.Format(o.Slot, o.Limit), policy)
		}
	case sched.RuleAgentSlots:
		for _, o := range f.Over {
			bad.Add("resources."+string(o.Slot), "no agent has %s %s (largest %s)", o.Slot, slots.Format(o.Slot, o.Need), slots.Format(o.Slot, o.Limit))
		}
	case sched.RuleFraction:
		bad.Add("resources."+string(slots.CUDAShares), "cuda.shares %s is more than one GPU but not a whole number of GPUs: a fraction runs under one GPU's MPS daemon and cannot be held beside other GPUs; ask for at most one GPU's worth or whole GPUs",
			slots.Format(slots.CUDAShares, f.Need))
	case sched.RuleTogether:
		bad.Add("resources", "no agent has %s together", per.String())
	case sched.RuleFolderHost:
		bad.Add("mounts", "no ALIVE, schedulable agent has the folder host %s: start an agent with -folder-host %s=PATH", f.Host, f.Host)
	default:
		bad.Add("resources", "%s", f.Reason)
	}
}

// sessionProblems is one answer with every problem: 400 when the request
// itself is malformed, else 422 when it could never run.
func sessionProblems(shape, fit apierr.Fields) error {
	all := append(append(apierr.Fields{}, shape...), fit...)
	if len(all) == 0 {
		return nil
	}
	err := all.Err().(*apierr.Error)
	if len(shape) == 0 {
		err.Kind = apierr.Unprocessable
		if len(fit) > 1 {
			err.Detail = fmt.Sprintf("the session can never run: %d reasons", len(fit))
		} else {
			err.Detail = "the session can never run: " + fit[0].Reason
		}
	}
	return err
}

// newSession makes the record: the id and times are made here, never in
// Apply (DESIGN.md: Apply is deterministic).
func (a *API) newSession(req *sessionRequest, u *state.User, kp *state.Keypair) (*state.Session, error) {
	id, err := ids.New(a.rnd, ids.Session)
	if err != nil {
		return nil, err
	}
	now := a.now().UTC()
	b := req.body
	env := b.Env
	if env == nil {
		env = map[string]string{}
	}
	return &state.Session{ID: id, Name: b.Name, Owner: u.Email, AccessKey: kp.AccessKey, Domain: u.Domain,
		Image: b.Image, Type: b.Type, Command: nonNil(b.Command), Env: env, Mounts: nonNil(req.mounts),
		ClusterSize: req.clusterSize, Requested: req.resources, Status: api.SessionPending,
		StatusHistory: []api.StatusChange{{Status: api.SessionPending, At: now}},
		Containers:    []state.SessionContainer{}, CreatedAt: now, RunAsRoot: b.RunAsRoot, Ports: req.ports}, nil
}

func sortedNames[V any](m map[slots.Name]V) []slots.Name {
	out := make([]slots.Name, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func sortedStrings[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
