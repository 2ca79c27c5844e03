package containerd

import (
	"context"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"

	"github.com/berth-cluster/berth/agent/runtime"
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

// eventTopics are containerd's events the runtime follows: a task's
// start, exit, OOM and deletion, and a container's deletion (one removed
// behind the agent's back).
var eventTopics = []string{
	`topic=="/tasks/start"`, `topic=="/tasks/exit"`, `topic=="/tasks/oom"`,
	`topic=="/tasks/delete"`, `topic=="/containers/delete"`,
}

// Events implements runtime.Runtime: containerd's task events for the
// namespace, as they arrive.
func (r *Runtime) Events(ctx context.Context) <-chan runtime.Event { return r.feed.Subscribe(ctx) }

// watchEvents follows containerd's task events for the namespace until ctx
// ends, resubscribing when the stream breaks; after a resubscription it
// says that events may have been lost (runtime.EventLost).
func (r *Runtime) watchEvents(ctx context.Context) {
	defer r.wg.Done()
	delay := minResubscribe
	for {
		began := time.Now()
		r.followEvents(ctx)
		if time.Since(began) > healthyStream {
			delay = minResubscribe
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxResubscribe)
		r.feed.Publish(runtime.Event{Kind: runtime.EventLost})
	}
}

// followEvents reads one subscription until it fails or ctx ends.
func (r *Runtime) followEvents(ctx context.Context) {
	ch, errs := r.client.Subscribe(r.ns(ctx), eventTopics...)
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-errs:
			if ctx.Err() == nil {
				r.cfg.Logger.Warn("containerd event stream lost; resubscribing (container states are still listed on every heartbeat, OOMs read from cgroups)",
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
			r.handleEvent(ctx, v)
		}
	}
}

// handleEvent passes one containerd event on to the runtime's readers.
func (r *Runtime) handleEvent(ctx context.Context, v any) {
	switch ev := v.(type) {
	case *apievents.TaskStart:
		r.feed.Publish(runtime.Event{ID: ev.ContainerID, Kind: runtime.EventStarted})
	case *apievents.TaskExit:
		// An exec's process exits under its container's id too; only the
		// task's own (its id is the container's) ends the container.
		if ev.ID == ev.ContainerID || ev.ID == "" {
			r.feed.Publish(runtime.Event{ID: ev.ContainerID, Kind: runtime.EventExited})
		}
	case *apievents.TaskOOM:
		// Remembered before it is passed on: the List it prompts must
		// read it as an OOM kill.
		r.rememberOOM(ev.ContainerID)
		r.feed.Publish(runtime.Event{ID: ev.ContainerID, Kind: runtime.EventOOM})
		r.labelOOM(ctx, ev.ContainerID)
	case *apievents.TaskDelete:
		if ev.ID == ev.ContainerID || ev.ID == "" {
			r.feed.Publish(runtime.Event{ID: ev.ContainerID, Kind: runtime.EventDeleted})
		}
	case *apievents.ContainerDelete:
		r.feed.Publish(runtime.Event{ID: ev.ID, Kind: runtime.EventDeleted})
	}
}

// rememberOOM keeps an OOM in memory; labelOOM records it on the container
// too, so that an agent restarted before List reads the exit still knows.
func (r *Runtime) rememberOOM(id string) {
	r.mu.Lock()
	r.oom[id] = true
	r.mu.Unlock()
}

func (r *Runtime) labelOOM(ctx context.Context, id string) {
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
