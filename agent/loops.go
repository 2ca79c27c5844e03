package agent

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

// resyncEvery is how often the agent converges without news from the
// managers: to notice containers that died or vanished, and to remove
// orphans whose grace has passed.
const resyncEvery = 5 * time.Second

// heartbeatLoop reports to the managers every HeartbeatEvery.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.HeartbeatEvery)
	defer t.Stop()
	for {
		a.heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) heartbeat(ctx context.Context) {
	hb := api.AgentHeartbeat{Address: a.addr, Capacity: a.capacity}
	var err error
	if hb.Containers, err = a.conv.report(ctx); err != nil {
		a.noteError(err)
	}
	if hb.Images, err = a.images(ctx); err != nil {
		a.noteError(err)
	}
	a.metrics.observe(hb.Containers)
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
		a.convergeNow(ctx)
	}
}

func (a *Agent) resyncLoop(ctx context.Context) {
	t := time.NewTicker(resyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.convergeNow(ctx)
		}
	}
}

func (a *Agent) convergeNow(ctx context.Context) {
	a.converging.Lock()
	defer a.converging.Unlock()
	if err := a.conv.converge(ctx); err != nil {
		a.noteError(err)
	}
}
