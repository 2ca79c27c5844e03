package containerd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/imageref"
	"github.com/berth-cluster/berth/shared/registry"
)

// Pull fetches ref from its registry through containerd's client (the
// fetching happens in this process: the credentials never reach the
// daemon) and unpacks it for the runtime's snapshotter as it arrives. A
// manifest or index over 4 MiB is refused before it is read. An image
// containerd recorded before the pull failed (unpacking after the fetch)
// is deleted again, so a pull that failed never leaves an image behind.
func (r *Runtime) Pull(ctx context.Context, req runtime.PullRequest) (runtime.Image, error) {
	ref, err := imageref.Parse(req.Ref)
	if err != nil {
		return runtime.Image{}, err
	}
	ctx = registry.Quiet(r.ns(ctx))
	_, getErr := r.client.GetImage(ctx, ref.Normal)
	existed := getErr == nil

	prog := &pullProgress{store: r.client.ContentStore(), seen: map[string]ocispec.Descriptor{}}
	wrap := func(h images.Handler) images.Handler {
		return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			if images.IsManifestType(desc.MediaType) || images.IsIndexType(desc.MediaType) {
				if err := registry.CheckManifest(ref.Normal, desc); err != nil {
					return nil, err
				}
			}
			prog.add(ctx, desc)
			children, err := h.Handle(ctx, desc)
			for _, c := range children {
				prog.add(ctx, c)
			}
			return children, err
		})
	}
	stop := prog.report(ctx, req.Progress)
	now := r.cfg.Now().UTC().Format(time.RFC3339Nano)
	img, err := r.client.Pull(ctx, ref.Normal,
		ctrd.WithResolver(registry.Resolver(req.Registries)),
		ctrd.WithPullUnpack,
		ctrd.WithPullSnapshotter(r.cfg.Snapshotter),
		ctrd.WithImageHandlerWrapper(wrap),
		ctrd.WithPullLabel(labelLastUsed, now),
	)
	stop()
	if err != nil {
		if !existed {
			r.dropImage(ctx, ref.Normal)
		}
		return runtime.Image{}, fmt.Errorf("pull %s: %w", req.Ref, explainPull(ref, req, err))
	}
	return describe(ctx, img), nil
}

// dropImage deletes what a failed pull recorded, if anything.
func (r *Runtime) dropImage(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := r.client.ImageService().Delete(ctx, name, images.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
		r.cfg.Logger.Warn("could not delete the image a failed pull left", "image", name, "err", err)
	}
}

// explainPull says why a pull failed in words a person can act on.
func explainPull(ref imageref.Ref, req runtime.PullRequest, err error) error {
	if errors.Is(err, registry.ErrTooLarge) {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no match for platform"):
		return fmt.Errorf("the image has no variant for this node's platform %s (%v)", platforms.Format(platforms.DefaultSpec()), err)
	case strings.Contains(msg, "no space left on device"):
		return fmt.Errorf("the node's image store is full (%v): free space on it, or lower -image-gc-high", err)
	}
	return registry.Explain(ref, req.Registries, err)
}

// pullProgress adds up what a pull has fetched: each blob it knows of
// counts whole once containerd has it, else as far as its download got.
type pullProgress struct {
	store content.Store
	mu    sync.Mutex
	seen  map[string]ocispec.Descriptor // ingest ref → blob
}

func (p *pullProgress) add(ctx context.Context, d ocispec.Descriptor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[remotes.MakeRefKey(ctx, d)] = d
}

func (p *pullProgress) measure(ctx context.Context) (done, total int64) {
	p.mu.Lock()
	seen := make(map[string]ocispec.Descriptor, len(p.seen))
	for k, d := range p.seen {
		seen[k] = d
	}
	p.mu.Unlock()
	active := map[string]int64{}
	if sts, err := p.store.ListStatuses(ctx); err == nil {
		for _, st := range sts {
			active[st.Ref] = st.Offset
		}
	}
	for key, d := range seen {
		total += d.Size
		if off, ok := active[key]; ok {
			done += min(off, d.Size)
		} else if _, err := p.store.Info(ctx, d.Digest); err == nil {
			done += d.Size
		}
	}
	return done, total
}

// report calls f every runtime.ProgressEvery until the returned stop is
// called, which reports once more.
func (p *pullProgress) report(ctx context.Context, f func(done, total int64)) (stop func()) {
	if f == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(runtime.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				f(p.measure(ctx))
			}
		}
	}()
	return func() {
		close(quit)
		wg.Wait()
		f(p.measure(context.WithoutCancel(ctx)))
	}
}
