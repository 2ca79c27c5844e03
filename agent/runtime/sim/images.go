package sim

import (
	"archive/tar"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-cluster/berth/agent/runtime"
)

// maxIndexBytes bounds the index.json an archive may carry.
const maxIndexBytes = 1 << 20

// Images implements runtime.Runtime: what the node was given and what
// containers or imports have asked for since, by name.
func (r *Runtime) Images(context.Context) ([]runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Collect(maps.Values(r.images))
	slices.SortFunc(out, func(a, b runtime.Image) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// ImportImage implements runtime.Runtime: it reads the OCI archive's
// index.json and records every image named there (the
// io.containerd.image.name or org.opencontainers.image.ref.name annotation
// of a manifest) with the manifest's digest. The layers are read past and
// not kept. An archive naming no image is refused, as containerd refuses it.
func (r *Runtime) ImportImage(_ context.Context, rd io.Reader) ([]runtime.Image, error) {
	tr := tar.NewReader(rd)
	var index *ocispec.Index
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("import image: read archive: %w", err)
		}
		if h.Name != "index.json" && h.Name != "./index.json" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxIndexBytes+1))
		if err != nil {
			return nil, fmt.Errorf("import image: read index.json: %w", err)
		}
		if len(b) > maxIndexBytes {
			return nil, fmt.Errorf("import image: index.json is larger than %d bytes", maxIndexBytes)
		}
		index = new(ocispec.Index)
		if err := json.Unmarshal(b, index); err != nil {
			return nil, fmt.Errorf("import image: index.json: %w", err)
		}
	}
	if index == nil {
		return nil, errors.New("import image: the archive has no index.json: not an OCI image layout")
	}
	var out []runtime.Image
	for _, m := range index.Manifests {
		name := cmp.Or(m.Annotations["io.containerd.image.name"], m.Annotations[ocispec.AnnotationRefName])
		if name == "" {
			continue
		}
		out = append(out, runtime.Image{Name: name, Digest: m.Digest.String(), Size: m.Size})
	}
	if len(out) == 0 {
		return nil, errors.New("import image: index.json names no image (annotation io.containerd.image.name or org.opencontainers.image.ref.name)")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, im := range out {
		r.images[im.Name] = im
	}
	return out, nil
}

// simImageSize is the size a simulated pull reports, so that progress and
// the image list read like a real node's.
const simImageSize = 64 << 20

// simDiskTotal is the size of the simulated image store's disk: large
// enough that image garbage collection never starts on a simulated node.
const simDiskTotal = 1 << 40

// Image implements runtime.Runtime: an image the node holds, by name.
func (r *Runtime) Image(_ context.Context, name string) (runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	im, ok := r.images[name]
	if !ok {
		return runtime.Image{}, fmt.Errorf("image %s: %w", name, runtime.ErrImageNotFound)
	}
	return im, nil
}

// Pull implements runtime.Runtime: the image is there at once, with a
// digest made from its name (no registry is asked), and the progress
// callback hears of the whole size once.
func (r *Runtime) Pull(ctx context.Context, req runtime.PullRequest) (runtime.Image, error) {
	if req.Ref == "" {
		return runtime.Image{}, errors.New("pull: no image named")
	}
	if err := ctx.Err(); err != nil {
		return runtime.Image{}, fmt.Errorf("pull %s: %w", req.Ref, err)
	}
	im := imageNamed(req.Ref)
	im.Size = simImageSize
	if req.Progress != nil {
		req.Progress(im.Size, im.Size)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if have, ok := r.images[req.Ref]; ok {
		return have, nil
	}
	r.images[req.Ref] = im
	return im, nil
}

// RemoveImage implements runtime.Runtime: refused while a container made
// from the image exists, as containerd's leases refuse it.
func (r *Runtime) RemoveImage(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.images[name]; !ok {
		return fmt.Errorf("remove image %s: %w", name, runtime.ErrImageNotFound)
	}
	for _, c := range r.containers {
		if c.spec.Image == name {
			return fmt.Errorf("remove image %s: container %s: %w", name, c.spec.ID, runtime.ErrImageInUse)
		}
	}
	delete(r.images, name)
	return nil
}

// ImageDisk implements runtime.Runtime: the images' sizes on a disk of
// simDiskTotal bytes.
func (r *Runtime) ImageDisk(context.Context) (runtime.DiskUsage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var used int64
	for _, im := range r.images {
		used += im.Size
	}
	return runtime.DiskUsage{Path: "(simulated)", UsedBytes: used, TotalBytes: simDiskTotal}, nil
}
