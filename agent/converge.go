package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-cluster/berth/agent/gpu"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// reportedStatus is a task state as the managers read it. An unknown
// state goes as it is, and they ignore it (api.ContainerStatus.Reported).
func reportedStatus(s runtime.State) api.ContainerStatus {
	switch s {
	case runtime.Created:
		return api.ContainerCreated
	case runtime.Running:
		return api.ContainerRunning
	case runtime.Exited:
		return api.ContainerExited
	}
	return api.ContainerStatus(s)
}

// converger brings the runtime to the desired containers. It starts each
// desired container once: one that vanishes after it started is reported
// gone, not restarted, so the manager decides what the session becomes.
type converger struct {
	rt          runtime.Runtime
	gpus        *gpu.Node
	log         *slog.Logger
	now         func() time.Time
	orphanGrace time.Duration
	stopGrace   time.Duration
	// folderHosts is -folder-host: where this node has each folder host.
	folderHosts map[string]string
	// users are who containers run as.
	users users
	// quotas sets the project quotas of folders; used by converge only,
	// which the agent runs one pass at a time.
	quotas *folderQuotas
	// net puts containers on their sessions' networks (nil: loopback only).
	net Network

	mu      sync.Mutex
	desired map[string]api.DesiredContainer
	// stop is what the managers ended on purpose: removed at once, with no
	// orphan grace (DesiredState.Stop).
	stop        map[string]bool
	stopping    map[string]bool // stops under way, see stopNow
	stops       sync.WaitGroup
	haveDesired bool // false until the managers have answered once
	started     map[string]bool
	failed      map[string]string // id → why it could not start
	// lost: containers found at start without a task, removed; id → why,
	// reported as gone while the managers still want them.
	lost        map[string]string
	orphanSince map[string]time.Time
	// orphansRemoved counts the containers removed for being unknown to
	// the managers past the grace (a metric).
	orphansRemoved atomic.Int64

	// pulls fetches missing images (nil: none is pulled, a missing image
	// fails the start); pulling are the containers waiting for one, regs
	// the registry credentials of the last desired state (converge_pull.go).
	pulls   *puller
	pulling map[string]*pullHandle
	regs    []api.RegistryCredentials
}

func newConverger(rt runtime.Runtime, gpus *gpu.Node, log *slog.Logger, now func() time.Time, orphanGrace, stopGrace time.Duration) *converger {
	return &converger{rt: rt, gpus: gpus, log: log, now: now, orphanGrace: orphanGrace, stopGrace: stopGrace,
		desired: map[string]api.DesiredContainer{}, stop: map[string]bool{}, stopping: map[string]bool{}, started: map[string]bool{}, failed: map[string]string{}, lost: map[string]string{},
		orphanSince: map[string]time.Time{}, quotas: &folderQuotas{log: log, set: map[folderKey]projectLimit{}},
		pulling: map[string]*pullHandle{}}
}

// setDesired replaces the desired set and the containers to stop at once.
func (c *converger) setDesired(list []api.DesiredContainer, stop ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.desired = make(map[string]api.DesiredContainer, len(list))
	for _, d := range list {
		c.desired[d.ID] = d
	}
	c.stop = make(map[string]bool, len(stop))
	for _, id := range stop {
		if _, want := c.desired[id]; !want { // what is desired runs, whatever else is said
			c.stop[id] = true
		}
	}
	c.haveDesired = true
	for id := range c.failed {
		if _, ok := c.desired[id]; !ok {
			delete(c.failed, id)
		}
	}
	for id := range c.pulling {
		if _, ok := c.desired[id]; !ok {
			delete(c.pulling, id)
		}
	}
}

// adopt records containers found running at start as started, so a restarted
// agent re-attaches to them instead of starting them again, and rebuilds
// the GPU ledger from their labels.
func (c *converger) adopt(cs []runtime.Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ct := range cs {
		c.started[ct.ID] = true
		if label := ct.Labels[runtime.LabelGPUs]; label != "" {
			var slices []api.GPUSlice
			if err := json.Unmarshal([]byte(label), &slices); err != nil {
				c.log.Warn("unreadable GPU label; the container's GPUs are not in the ledger", "container", ct.ID, "err", err)
				continue
			}
			c.gpus.Adopt(ct.ID, slices)
		}
	}
}

// dropTaskless removes the containers found at start that have no task:
// their process died with containerd or the node (the agent creates the
// container and starts its task in one step), and starting them again would
// run a session twice. They are adopted first, so the report says they are
// gone and the managers end their sessions with the reason.
func (c *converger) dropTaskless(ctx context.Context, cs []runtime.Container) {
	for _, ct := range cs {
		if ct.State != runtime.Created {
			continue
		}
		if err := c.rt.Remove(ctx, ct.ID); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			c.log.Warn("could not remove a container whose task was lost", "container", ct.ID, "err", err)
			continue
		}
		c.detachNetwork(ctx, ct.ID)
		c.log.Warn("container lost its task (containerd or the node restarted): removed", "container", ct.ID, "session", ct.SessionID)
		c.mu.Lock()
		c.lost[ct.ID] = "its task was lost: containerd or the node restarted under it"
		c.mu.Unlock()
	}
}

// converge starts what is desired and missing and removes what is not
// desired once its grace has passed. Errors of single containers are
// recorded for the report; the returned error is the runtime failing as a
// whole (containerd down).
func (c *converger) converge(ctx context.Context) error {
	actual, err := c.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	c.mu.Lock()
	if !c.haveDesired {
		c.mu.Unlock()
		return nil // never act before knowing what the managers want
	}
	desired := make(map[string]api.DesiredContainer, len(c.desired))
	for id, d := range c.desired {
		desired[id] = d
	}
	stop := make(map[string]bool, len(c.stop))
	for id := range c.stop {
		stop[id] = true
	}
	c.mu.Unlock()

	present := map[string]bool{}
	var ended []runtime.Container
	for _, ct := range actual {
		present[ct.ID] = true
		if _, want := desired[ct.ID]; want {
			c.clearOrphan(ct.ID)
			continue
		}
		if stop[ct.ID] {
			ended = append(ended, ct)
			continue
		}
		c.removeOrphan(ctx, ct)
	}
	c.stopNow(ctx, ended)
	for _, id := range sortedKeys(desired) {
		if present[id] || c.wasStarted(id) || c.hasFailed(id) {
			if present[id] {
				c.followQuotas(ctx, desired[id])
			}
			continue
		}
		c.start(ctx, desired[id])
	}
	c.quotas.release(desired)
	return nil
}

// followQuotas keeps the project quotas of a running container's folders
// at the limits the managers send now (a policy changed, or the agent
// restarted and re-attached). It cannot fail the container, which runs
// already: a failure is logged and tried again on the next pass.
func (c *converger) followQuotas(ctx context.Context, d api.DesiredContainer) {
	if err := c.quotas.ensure(ctx, d, false); err != nil {
		c.log.Warn("could not update a running container's folder quota", "container", d.ID, "session", d.SessionID, "err", err)
	}
}

func (c *converger) start(ctx context.Context, d api.DesiredContainer) {
	if !c.imageReady(ctx, d) {
		return
	}
	grant, err := c.gpus.Grant(ctx, d.ID, d.GPUs)
	if err == nil {
		var spec runtime.Spec
		if spec, err = specOf(d, grant, c.folderHosts, c.users); err == nil {
			// Before the start: a session must never write to a folder
			// before its limit holds there.
			if err = c.quotas.ensure(ctx, d, true); err == nil {
				if err = c.attachNetwork(ctx, d, &spec); err != nil {
					err = fmt.Errorf("network: %w", err)
				} else if _, err = c.rt.Run(ctx, spec); err != nil {
					c.detachNetwork(ctx, d.ID)
				}
			}
		}
		if err != nil {
			if rerr := c.gpus.Release(ctx, d.ID); rerr != nil {
				c.log.Warn("release GPUs of a container that did not start", "container", d.ID, "err", rerr)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		reason := "start-failed: " + err.Error()
		if errors.Is(err, runtime.ErrImageNotFound) {
			reason = "image-missing: " + err.Error()
		}
		c.failed[d.ID] = reason
		c.log.Warn("could not start container", "container", d.ID, "session", d.SessionID, "err", err)
		return
	}
	c.started[d.ID] = true
	c.log.Info("started container", "container", d.ID, "session", d.SessionID, "image", d.Image)
}

func (c *converger) removeOrphan(ctx context.Context, ct runtime.Container) {
	c.mu.Lock()
	since, seen := c.orphanSince[ct.ID]
	if !seen {
		since = c.now()
		c.orphanSince[ct.ID] = since
	}
	c.mu.Unlock()
	if c.now().Sub(since) < c.orphanGrace {
		return
	}
	if c.remove(ctx, ct, "orphan: the managers do not want it (grace "+c.orphanGrace.String()+" passed)") {
		c.orphansRemoved.Add(1)
	}
}

// stopNow stops and removes the containers the managers ended, each in
// the background: a container that ignores SIGTERM holds its stop for the
// whole grace, and neither the other containers of the session nor the
// starts of new sessions should wait for it. A container already being
// stopped is left to that stop.
func (c *converger) stopNow(ctx context.Context, cts []runtime.Container) {
	for _, ct := range cts {
		c.mu.Lock()
		busy := c.stopping[ct.ID]
		c.stopping[ct.ID] = true
		c.mu.Unlock()
		if busy {
			continue
		}
		c.stops.Add(1)
		go func() {
			defer c.stops.Done()
			c.remove(ctx, ct, "its session ended")
			c.mu.Lock()
			delete(c.stopping, ct.ID)
			c.mu.Unlock()
		}()
	}
}

// waitStops waits for the stops under way (tests, and the agent's exit).
func (c *converger) waitStops() { c.stops.Wait() }

// remove stops a running container (SIGTERM, SIGKILL after the stop grace)
// and deletes it; why says why in the log. It reports whether the
// container is gone.
func (c *converger) remove(ctx context.Context, ct runtime.Container, why string) bool {
	if ct.State == runtime.Running {
		if err := c.rt.Stop(ctx, ct.ID, c.stopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			c.log.Warn("could not stop container", "container", ct.ID, "why", why, "err", err)
			return false
		}
	}
	if err := c.rt.Remove(ctx, ct.ID); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		c.log.Warn("could not remove container", "container", ct.ID, "why", why, "err", err)
		return false
	}
	c.detachNetwork(ctx, ct.ID)
	c.log.Info("removed container", "container", ct.ID, "session", ct.SessionID, "why", why)
	if err := c.gpus.Release(ctx, ct.ID); err != nil {
		c.log.Warn("release the container's GPUs", "container", ct.ID, "err", err)
	}
	c.mu.Lock()
	delete(c.orphanSince, ct.ID)
	delete(c.started, ct.ID)
	c.mu.Unlock()
	return true
}

func (c *converger) clearOrphan(id string) {
	c.mu.Lock()
	delete(c.orphanSince, id)
	c.mu.Unlock()
}

func (c *converger) wasStarted(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started[id]
}

func (c *converger) hasFailed(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.failed[id]
	return ok
}

// report describes every container: what the runtime holds (with usage for
// running ones when usage is set), desired ones that failed to start or
// wait for their image, started ones that vanished.
func (c *converger) report(ctx context.Context, usage bool) ([]api.ContainerReport, error) {
	// What the converger knows is read before the runtime is listed: a
	// container it started after this read is listed (or absent and not
	// yet taken as started), never taken as started and absent, which
	// would report it gone while it runs.
	absent := c.absentReports()
	actual, err := c.rt.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	// Never nil: an empty list says "nothing runs here", which the
	// managers act on (a TERMINATING session's containers are gone); a
	// report that could not list the runtime carries no list at all.
	out := []api.ContainerReport{}
	present := map[string]bool{}
	for _, ct := range actual {
		present[ct.ID] = true
		r := api.ContainerReport{ID: ct.ID, SessionID: ct.SessionID, Index: ct.Index, Status: reportedStatus(ct.State), Address: c.address(ct.ID),
			ImageDigest: ct.ImageDigest}
		if !ct.StartedAt.IsZero() {
			at := ct.StartedAt.UTC()
			r.StartedAt = &at
		}
		switch ct.State {
		case runtime.Running:
			if !usage {
				break
			}
			if u, err := c.rt.Usage(ctx, ct.ID); err == nil {
				r.CPUSeconds, r.MemoryWorkingSet = u.CPUSeconds, u.MemoryWorkingSet
			}
		case runtime.Exited:
			code := ct.ExitCode
			r.ExitCode = &code
			at := ct.ExitedAt.UTC()
			r.ExitedAt = &at
			if ct.OOMKilled {
				r.Reason = "oom-killed"
			}
		}
		out = append(out, r)
	}
	for _, r := range absent {
		if !present[r.ID] {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// absentReports are what report says of each desired container the runtime
// does not list: failed to start, waiting for its image, or gone after it
// started.
func (c *converger) absentReports() []api.ContainerReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []api.ContainerReport
	for _, id := range sortedKeys(c.desired) {
		d := c.desired[id]
		switch {
		case c.failed[id] != "":
			out = append(out, api.ContainerReport{ID: id, SessionID: d.SessionID, Index: d.Index, Status: api.ContainerFailed, Reason: c.failed[id]})
		case c.pulling[id] != nil:
			out = append(out, api.ContainerReport{ID: id, SessionID: d.SessionID, Index: d.Index, Status: api.ContainerPulling, Reason: c.pulling[id].describe()})
		case c.started[id]:
			reason := "container vanished from the runtime"
			if why := c.lost[id]; why != "" {
				reason = why
			}
			out = append(out, api.ContainerReport{ID: id, SessionID: d.SessionID, Index: d.Index, Status: api.ContainerGone, Reason: reason})
		}
	}
	return out
}

// occupied is what the desired containers hold of this node.
func (c *converger) occupied() slots.Slots {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := slots.Slots{}
	for _, d := range c.desired {
		total = total.Add(d.Slots)
	}
	return total
}

// users are who a session's containers run as: its policy decided whether
// it may be root, the agent's flags who it is otherwise.
type users struct {
	normal, root runtime.User
}

func sessionUsers(cfg Config) users {
	u := users{normal: runtime.User{UID: cfg.ContainerUID, GID: cfg.ContainerGID}}
	if cfg.FolderGID != 0 && cfg.FolderGID != cfg.ContainerGID {
		u.normal.AdditionalGIDs = []uint32{cfg.FolderGID}
	}
	if cfg.FolderGID != 0 {
		u.root.AdditionalGIDs = []uint32{cfg.FolderGID}
	}
	return u
}

// specOf maps a desired container and its GPU grant to the runtime's spec;
// storage folder mounts are found under this node's folder hosts. The
// grant's environment wins over the session's: NVIDIA_VISIBLE_DEVICES,
// CUDA_VISIBLE_DEVICES and the MPS limits are the agent's to say.
func specOf(d api.DesiredContainer, g gpu.Grant, folderHosts map[string]string, us users) (runtime.Spec, error) {
	assignment, err := json.Marshal(d.Slots)
	if err != nil {
		return runtime.Spec{}, fmt.Errorf("encode slot assignment of %s: %w", d.ID, err)
	}
	user, name := us.normal, "work"
	if d.RunAsRoot {
		user, name = us.root, "root"
	}
	env := make(map[string]string, len(d.Env)+len(g.Env)+1)
	env["USER"] = name
	for k, v := range d.Env {
		env[k] = v
	}
	for k, v := range g.Env {
		env[k] = v
	}
	workDir := d.WorkingDir
	if workDir == "" {
		workDir = ContainerHome
	}
	s := runtime.Spec{ID: d.ID, SessionID: d.SessionID, Index: d.Index, Image: d.Image, Command: d.Command, Env: env,
		WorkingDir: workDir, MilliCPU: d.Slots[slots.CPU], MemoryBytes: d.Slots[slots.Mem], GPU: g.Access,
		User: user, Home: ContainerHome,
		Labels: map[string]string{runtime.LabelSlots: string(assignment), runtime.LabelSession: d.SessionID, runtime.LabelIndex: strconv.Itoa(d.Index)}}
	if len(d.GPUs) > 0 {
		gpus, err := json.Marshal(d.GPUs)
		if err != nil {
			return runtime.Spec{}, fmt.Errorf("encode GPU slices of %s: %w", d.ID, err)
		}
		s.Labels[runtime.LabelGPUs] = string(gpus)
	}
	for _, m := range d.Mounts {
		src, err := mountSource(m, folderHosts)
		if err != nil {
			return runtime.Spec{}, err
		}
		s.Mounts = append(s.Mounts, runtime.Mount{Source: src, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	return s, nil
}

// mountSource is the directory a mount binds: a storage folder's is
// FOLDER-ID under the path this node has for its host.
func mountSource(m api.Mount, folderHosts map[string]string) (string, error) {
	if m.Host == "" {
		return m.Source, nil
	}
	root, ok := folderHosts[m.Host]
	if !ok {
		return "", fmt.Errorf("folder host %s is not configured on this agent (start it with -folder-host %s=PATH) for %s", m.Host, m.Host, m.Target)
	}
	if m.Folder == "" || !filepath.IsLocal(m.Folder) || strings.ContainsRune(m.Folder, '/') {
		return "", fmt.Errorf("folder id %q of %s is not a plain name", m.Folder, m.Target)
	}
	src := filepath.Join(root, m.Folder)
	st, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("folder %s on host %s for %s: %w", m.Folder, m.Host, m.Target, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("folder %s on host %s (%s) is not a directory", m.Folder, m.Host, src)
	}
	return src, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
