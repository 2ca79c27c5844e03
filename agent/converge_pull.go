package agent

import (
	"context"
	"errors"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// setRegistries keeps the registry credentials of the last desired state:
// what pulls of the desired containers' images use.
func (c *converger) setRegistries(creds []api.RegistryCredentials) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.regs = creds
}

func (c *converger) registries() []api.RegistryCredentials {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.regs
}

// imageReady reports whether d's image is here to start d from. When it is
// not, d waits for a pull of it (started, or joined when one runs); a pull
// that failed fails d with its reason. Only with a puller: without one,
// Run says the image is missing.
func (c *converger) imageReady(ctx context.Context, d api.DesiredContainer) bool {
	if c.pulls == nil {
		return true
	}
	c.mu.Lock()
	h := c.pulling[d.ID]
	c.mu.Unlock()
	if h != nil {
		done, err := h.finished()
		if !done {
			return false
		}
		c.mu.Lock()
		delete(c.pulling, d.ID)
		c.mu.Unlock()
		if err != nil {
			c.fail(d, "image-pull-failed: "+err.Error())
			return false
		}
	}
	_, err := c.rt.Image(ctx, d.Image)
	switch {
	case err == nil:
		return true
	case !errors.Is(err, runtime.ErrImageNotFound):
		c.fail(d, "start-failed: "+err.Error())
		return false
	case h != nil:
		// Pulled, and gone before the container could be made.
		c.fail(d, "image-pull-failed: "+d.Image+" was pulled and removed again before its container started")
		return false
	}
	h = c.pulls.get(d.Image, c.registries())
	c.mu.Lock()
	c.pulling[d.ID] = h
	c.mu.Unlock()
	return false
}

// fail records that d could not start, for the report.
func (c *converger) fail(d api.DesiredContainer, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed[d.ID] = reason
	c.log.Warn("could not start container", "container", d.ID, "session", d.SessionID, "reason", reason)
}

// imagesWanted are the images of the desired containers (those running
// and those waiting to start): garbage collection leaves them.
func (c *converger) imagesWanted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.desired))
	for _, d := range c.desired {
		out = append(out, d.Image)
	}
	return out
}
