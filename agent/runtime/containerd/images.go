package containerd

import (
	"context"
	"fmt"
	"io"
	"os"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/distribution/reference"

	"github.com/berth-cluster/berth/agent/runtime"
)

// ImportImage validates an OCI image layout tarball (plain or gzip), loads it
// into containerd, unpacks every image it names into the snapshotter (so
// that Run does not pay for it) and returns those images. An archive that is
// not an OCI layout fails with ErrNotOCIArchive before containerd sees it.
func (r *Runtime) ImportImage(ctx context.Context, rd io.Reader) ([]runtime.Image, error) {
	ctx = r.ns(ctx)
	// The archive is read twice (validation, then containerd), so it is
	// spooled to disk while being validated: one pass over the input.
	spool, err := os.CreateTemp(r.cfg.TempDir, "berth-import-*.tar")
	if err != nil {
		return nil, fmt.Errorf("import image: spool file: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()

	if _, err := validateArchive(io.TeeReader(rd, spool)); err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	// The tar reader stops at the end-of-archive marker; containerd gets the
	// bytes after it too, as they were given.
	if _, err := io.Copy(spool, rd); err != nil {
		return nil, fmt.Errorf("import image: read archive: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("import image: rewind spool: %w", err)
	}

	imgs, err := r.client.Import(ctx, spool, ctrd.WithImageRefTranslator(fullRef))
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	out := make([]runtime.Image, 0, len(imgs))
	for _, rec := range imgs {
		img := ctrd.NewImage(r.client, rec)
		if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
			return nil, fmt.Errorf("import image: unpack %s: %w", rec.Name, err)
		}
		out = append(out, describe(ctx, img))
	}
	return out, nil
}

// Images lists the images in the namespace.
func (r *Runtime) Images(ctx context.Context) ([]runtime.Image, error) {
	ctx = r.ns(ctx)
	imgs, err := r.client.ListImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]runtime.Image, 0, len(imgs))
	for _, img := range imgs {
		// An image whose content is not all there (a pull another tool
		// broke off) is not one a container can be made from.
		if !r.whole(ctx, img) {
			continue
		}
		out = append(out, describe(ctx, img))
	}
	return out, nil
}

// describe reports an image. Size is that of the content for this
// platform (0 when it cannot be added up).
func describe(ctx context.Context, img ctrd.Image) runtime.Image {
	size, err := img.Size(ctx)
	if err != nil {
		size = 0
	}
	return runtime.Image{Name: img.Name(), Digest: img.Target().Digest.String(), Size: size, LastUsed: lastUsed(img)}
}

// image finds an image by the name a Spec gives. Names are stored as
// imported; a short docker-style name ("berth/base:latest") also finds the
// image stored under its normalized form ("docker.io/berth/base:latest").
func (r *Runtime) image(ctx context.Context, name string) (ctrd.Image, error) {
	if name == "" {
		return nil, fmt.Errorf("no image named: %w", runtime.ErrImageNotFound)
	}
	img, err := r.client.GetImage(ctx, name)
	if err == nil {
		return img, nil
	}
	if !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("look up image %s: %w", name, err)
	}
	if ref, perr := reference.ParseDockerRef(name); perr == nil && ref.String() != name {
		img, err = r.client.GetImage(ctx, ref.String())
		if err == nil {
			return img, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("look up image %s: %w", ref.String(), err)
		}
	}
	return nil, fmt.Errorf("image %s: %w", name, runtime.ErrImageNotFound)
}
