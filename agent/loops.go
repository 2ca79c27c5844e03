package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

// heartbeatLoop heartbeats to the managers every HeartbeatEvery and, in
// between, reports containers that changed as soon as it is prompted
// (reports.go). Both go from this one goroutine, one at a time, so the
// managers receive them in the order they were listed.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	for {
		a.heartbeat(ctx)
		every := a.cfg.HeartbeatEvery
		if a.pulls.busy() {
			// A pull's progress is the session's status_info.
			every = min(every, pullReportEvery)
		}
		t := time.NewTimer(every)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				break wait
			case <-a.beat:
				t.Stop()
				break wait
			case <-a.reportKick:
				a.report(ctx)
			}
		}
	}
}

func (a *Agent) heartbeat(ctx context.Context) {
	hb := api.AgentHeartbeat{Address: a.addr, Capacity: a.capacity}
	var err error
	if hb.Containers, err = a.conv.report(ctx, true); err != nil {
		a.noteError(err)
	}
	if hb.Images, err = a.images(ctx); err != nil {
		a.noteError(err)
	}
	// The inventory is sent with every heartbeat: it is small, and a
	// manager that lost its state learns it again without a registration.
	hb.GPUs, hb.GPUShareQuantum = a.cfg.GPUs.Devices(), a.cfg.GPUs.Quantum()
	hb.FolderHosts = a.folderHostNames()
	hb.Pulls = a.pulls.report()
	hb.GPUUsage = a.gpuUsage(ctx, hb.Containers)
	a.metrics.observe(hb.Containers)
	a.metrics.observeGPUs(hb.GPUUsage)
	hb.Errors = a.takeErrors()
	id := a.credentials()
	ctx, cancel := context.WithTimeout(ctx, 2*a.cfg.HeartbeatEvery+5*time.Second)
	defer cancel()
	if _, err := a.mgr.Heartbeat(ctx, id.ID, id.Secret, hb); err != nil {
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("heartbeat failed", "err", err)
		a.metrics.heartbeatFailures.Inc()
		var p *api.Problem
		if errors.As(err, &p) && p.Status == http.StatusUnauthorized {
			// The managers no longer know this agent (their state was
			// rebuilt): register again under the same id if they allow it.
			if rerr := a.registerOnce(ctx); rerr != nil {
				a.log.Warn("re-registration failed", "err", rerr)
			}
		}
		return
	}
	if hb.Containers != nil {
		a.told.heardAll(hb.Containers)
	}
	a.metrics.heartbeats.Inc()
}

// desiredLoop follows the managers' desired containers with blocking
// queries and converges on every change.
func (a *Agent) desiredLoop(ctx context.Context) {
	var index uint64
	backoff := time.Second
	for ctx.Err() == nil {
		id := a.credentials()
		ds, err := a.mgr.Desired(ctx, id.ID, id.Secret, index, a.cfg.DesiredWait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("fetch desired containers failed; retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = time.Second
		if ds.Index == index && index != 0 {
			continue // the wait passed with no change
		}
		// A new leader may answer with a lower index than the last one seen
		// (it has not applied as far yet); take its answer as it is.
		index = ds.Index
		a.conv.setDesired(ds.Containers, ds.Stop...)
		a.conv.setRegistries(ds.Registries)
		a.convergeNow(ctx)
	}
}

func (a *Agent) resyncLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.ResyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.convergeNow(ctx)
			if a.cfg.Network != nil {
				// A firewall reload may have flushed the sessions' rules.
				if err := a.cfg.Network.Ensure(ctx); err != nil {
					a.noteError(err)
				}
			}
		case <-a.converge:
			// A pull ended: its containers start now, and the managers
			// hear of them at once, not a heartbeat later.
			a.convergeNow(ctx)
			kick(a.beat)
		}
	}
}

func (a *Agent) convergeNow(ctx context.Context) {
	a.converging.Lock()
	defer a.converging.Unlock()
	// A start that failed, a pull that began, a container found gone: the
	// managers hear of it now (a prompt that finds nothing new sends
	// nothing).
	defer kick(a.reportKick)
	if err := a.conv.converge(ctx); err != nil {
		a.noteError(err)
	}
	if err := a.cfg.GPUs.Supervise(ctx); err != nil {
		a.noteError(err)
	}
}

// gpuUsage measures the GPUs and fills in each running container's GPU
// memory: NVML names the host pids using a GPU, the runtime the host pids
// of each container's task.
func (a *Agent) gpuUsage(ctx context.Context, reports []api.ContainerReport) []api.GPUUsage {
	usage, byPid, err := a.cfg.GPUs.Usage()
	if err != nil {
		a.noteError(fmt.Errorf("GPU usage: %w", err))
	}
	if len(byPid) == 0 {
		return usage
	}
	held := a.cfg.GPUs.Held()
	for i := range reports {
		r := &reports[i]
		if _, ok := held[r.ID]; !ok || r.Status != api.ContainerRunning {
			continue
		}
		pids, err := a.cfg.Runtime.Pids(ctx, r.ID)
		if err != nil {
			continue // it ended since the report was made
		}
		for _, p := range pids {
			r.GPUMemoryBytes += byPid[p]
		}
	}
	return usage
}
