package containerd

import (
	"context"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"
)

// Resubscribing to the event stream after containerd went away backs off
// from minResubscribe to maxResubscribe, so that a daemon that stays down
// neither makes the agent spin nor floods its log; a stream that lived
// healthyStream resets the delay.
const (
	minResubscribe = time.Second
	maxResubscribe = 30 * time.Second
	healthyStream  = 10 * time.Second
)

// watchOOM follows containerd's /tasks/oom events for the namespace until
// ctx ends, resubscribing when the stream breaks.
func (r *Runtime) watchOOM(ctx context.Context) {
	defer r.wg.Done()
	delay := minResubscribe
	for {
		began := time.Now()
		r.followOOM(ctx)
		if time.Since(began) > healthyStream {
			delay = minResubscribe
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxResubscribe)
	}
}

// followOOM reads one subscription until it fails or ctx ends.
func (r *Runtime) followOOM(ctx context.Context) {
	ch, errs := r.client.Subscribe(r.ns(ctx), `topic=="/tasks/oom"`)
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-errs:
			if ctx.Err() == nil {
				r.cfg.Logger.Warn("containerd event stream lost; resubscribing (OOMs are still read from cgroups)",
					"err", err)
			}
			return
		case env := <-ch:
			// Events of every namespace arrive on a subscription.
			if env == nil || env.Namespace != r.cfg.Namespace || env.Event == nil {
				continue
			}
			v, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				r.cfg.Logger.Warn("undecodable containerd event", "topic", env.Topic, "err", err)
				continue
			}
			if ev, ok := v.(*apievents.TaskOOM); ok {
				r.markOOM(ctx, ev.ContainerID)
			}
		}
	}
}

// markOOM remembers an OOM in memory and, so that an agent restarted before
// List reads the exit still knows, on the container as a label.
func (r *Runtime) markOOM(ctx context.Context, id string) {
	r.mu.Lock()
	r.oom[id] = true
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(r.ns(ctx), 10*time.Second)
	defer cancel()
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return // removed meanwhile: nobody will ask
	}
	if _, err := c.SetLabels(ctx, map[string]string{labelOOMKilled: "true"}); err != nil {
		r.cfg.Logger.Warn("could not record OOM on container", "id", id, "err", err)
	}
}

func (r *Runtime) sawOOM(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.oom[id]
}

func (r *Runtime) forgetOOM(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.oom, id)
}
