package containerd

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"

	"github.com/berth-cluster/berth/agent/runtime"
)

// labelLastUsed is the image label that says when a container was last made
// from the image (or it was pulled): kept in containerd, so a restarted
// agent's image garbage collection still knows the order.
const labelLastUsed = "berth.last-used"

// Image finds a present, whole image by name.
func (r *Runtime) Image(ctx context.Context, name string) (runtime.Image, error) {
	ctx = r.ns(ctx)
	img, err := r.image(ctx, name)
	if err != nil {
		return runtime.Image{}, err
	}
	if !r.whole(ctx, img) {
		return runtime.Image{}, fmt.Errorf("image %s is incomplete: %w", name, runtime.ErrImageNotFound)
	}
	return describe(ctx, img), nil
}

// whole reports whether every blob of the image's platform is present.
func (r *Runtime) whole(ctx context.Context, img ctrd.Image) bool {
	ok, _, _, missing, err := images.Check(ctx, r.client.ContentStore(), img.Target(), img.Platform())
	return err == nil && ok && len(missing) == 0
}

// withImageDigest records in a container's labels the digest of the image
// it is made from.
func withImageDigest(labels map[string]string, img ctrd.Image) map[string]string {
	labels[runtime.LabelImageDigest] = img.Target().Digest.String()
	return labels
}

// markUsed stamps the image as used now. Failing only costs garbage
// collection its order, so it is logged, not returned.
func (r *Runtime) markUsed(ctx context.Context, img ctrd.Image) {
	now := r.cfg.Now().UTC().Format(time.RFC3339Nano)
	_, err := r.client.ImageService().Update(ctx, images.Image{Name: img.Name(), Labels: map[string]string{labelLastUsed: now}},
		"labels."+labelLastUsed)
	if err != nil {
		r.cfg.Logger.Warn("could not mark the image used", "image", img.Name(), "err", err)
	}
}

// lastUsed is the image's mark, or when it was last changed.
func lastUsed(img ctrd.Image) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, img.Labels()[labelLastUsed]); err == nil {
		return t
	}
	return img.Metadata().UpdatedAt
}

// RemoveImage deletes an image no container was made from, and its
// content with it once nothing else refers to it.
func (r *Runtime) RemoveImage(ctx context.Context, name string) error {
	ctx = r.ns(ctx)
	img, err := r.image(ctx, name)
	if err != nil {
		return err
	}
	cs, err := r.client.Containers(ctx, "image=="+img.Name())
	if err != nil {
		return fmt.Errorf("remove image %s: list its containers: %w", name, err)
	}
	if len(cs) > 0 {
		ids := make([]string, 0, len(cs))
		for _, c := range cs {
			ids = append(ids, c.ID())
		}
		return fmt.Errorf("image %s: containers %s: %w", img.Name(), strings.Join(ids, ", "), runtime.ErrImageInUse)
	}
	if err := r.client.ImageService().Delete(ctx, img.Name(), images.SynchronousDelete()); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("image %s: %w", name, runtime.ErrImageNotFound)
		}
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	return nil
}

// ImageDisk measures the fuller of the filesystems holding containerd's
// content store (the images' blobs) and its snapshotter (their unpacked
// layers); containerd says where they are (its plugins' exports).
func (r *Runtime) ImageDisk(ctx context.Context) (runtime.DiskUsage, error) {
	ctx = r.ns(ctx)
	resp, err := r.client.IntrospectionService().Plugins(ctx, []string{
		"type==io.containerd.content.v1",
		"type==io.containerd.snapshotter.v1,id==" + r.cfg.Snapshotter,
	})
	if err != nil {
		return runtime.DiskUsage{}, fmt.Errorf("image disk: ask containerd where its stores are: %w", err)
	}
	var out runtime.DiskUsage
	for _, p := range resp.Plugins {
		root := p.Exports["root"]
		if root == "" {
			continue
		}
		var st syscall.Statfs_t
		if err := syscall.Statfs(root, &st); err != nil {
			return runtime.DiskUsage{}, fmt.Errorf("image disk: statfs %s: %w", root, err)
		}
		total := int64(st.Blocks) * st.Bsize
		used := total - int64(st.Bfree)*st.Bsize
		if out.TotalBytes == 0 || float64(used)/float64(max(total, 1)) > float64(out.UsedBytes)/float64(max(out.TotalBytes, 1)) {
			out = runtime.DiskUsage{Path: root, UsedBytes: used, TotalBytes: total}
		}
	}
	if out.TotalBytes == 0 {
		return runtime.DiskUsage{}, fmt.Errorf("image disk: containerd names no store root (content plugin, snapshotter %s)", r.cfg.Snapshotter)
	}
	return out, nil
}
