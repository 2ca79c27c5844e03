package containerd

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/containerd/containerd/images"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrNotOCIArchive is returned for an archive that is not an OCI image
// layout tarball; nothing of it reaches containerd.
var ErrNotOCIArchive = errors.New("not an OCI image archive")

// Bounds on the small JSON files read into memory while validating.
const (
	maxLayoutFile = 4 << 10
	maxIndexFile  = 4 << 20
)

// archiveSummary is what validation learned of an archive.
type archiveSummary struct {
	manifests []ocispec.Descriptor
	// names are the image names the archive gives (those Import will create).
	names []string
}

// validateArchive reads an OCI image layout tarball (plain or gzip) to its
// end and checks its structure: an oci-layout file, one index.json listing
// at least one manifest, every listed manifest present as a blob of the
// stated size, and at least one usable image name. It does not hash blobs:
// containerd verifies every digest as it ingests. Garbage fails at the first
// tar header, before anything is written to containerd.
func validateArchive(r io.Reader) (archiveSummary, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return archiveSummary{}, notOCI("gzip: %v", err)
		}
		defer zr.Close()
		src = zr
	}

	var (
		tr        = tar.NewReader(src)
		layout    *ocispec.ImageLayout
		index     *ocispec.Index
		dockerTar bool
		blobs     = make(map[digest.Digest]int64)
	)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return archiveSummary{}, notOCI("reading tar: %v", err)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return archiveSummary{}, err
		}
		if name == "" || hdr.Typeflag == tar.TypeDir {
			continue
		}
		isLayoutFile := name == ocispec.ImageLayoutFile || name == ocispec.ImageIndexFile ||
			strings.HasPrefix(name, ocispec.ImageBlobsDir+"/")
		if isLayoutFile && !hdr.FileInfo().Mode().IsRegular() {
			return archiveSummary{}, notOCI("%s is not a regular file", name)
		}
		switch {
		case name == ocispec.ImageLayoutFile:
			if layout != nil {
				return archiveSummary{}, notOCI("duplicate %s", name)
			}
			layout = new(ocispec.ImageLayout)
			if err := readJSON(tr, maxLayoutFile, layout); err != nil {
				return archiveSummary{}, notOCI("%s: %v", name, err)
			}
		case name == ocispec.ImageIndexFile:
			if index != nil {
				return archiveSummary{}, notOCI("duplicate %s", name)
			}
			index = new(ocispec.Index)
			if err := readJSON(tr, maxIndexFile, index); err != nil {
				return archiveSummary{}, notOCI("%s: %v", name, err)
			}
		case strings.HasPrefix(name, ocispec.ImageBlobsDir+"/"):
			d, err := blobDigest(name)
			if err != nil {
				return archiveSummary{}, err
			}
			blobs[d] = hdr.Size
		case name == "manifest.json":
			dockerTar = true
		}
	}
	return checkLayout(layout, index, dockerTar, blobs)
}

// checkLayout applies the rules that need the whole archive seen.
func checkLayout(layout *ocispec.ImageLayout, index *ocispec.Index, dockerTar bool, blobs map[digest.Digest]int64) (archiveSummary, error) {
	if index == nil {
		if dockerTar {
			return archiveSummary{}, notOCI("no %s: a docker save archive? only OCI layouts are imported", ocispec.ImageIndexFile)
		}
		return archiveSummary{}, notOCI("no %s", ocispec.ImageIndexFile)
	}
	if layout == nil {
		return archiveSummary{}, notOCI("no %s file", ocispec.ImageLayoutFile)
	}
	if layout.Version == "" {
		return archiveSummary{}, notOCI("%s has no imageLayoutVersion", ocispec.ImageLayoutFile)
	}
	if index.SchemaVersion != 2 {
		return archiveSummary{}, notOCI("%s: schemaVersion %d, want 2", ocispec.ImageIndexFile, index.SchemaVersion)
	}
	if len(index.Manifests) == 0 {
		return archiveSummary{}, notOCI("%s lists no manifest", ocispec.ImageIndexFile)
	}
	var sum archiveSummary
	for _, m := range index.Manifests {
		if err := m.Digest.Validate(); err != nil {
			return archiveSummary{}, notOCI("%s: manifest digest %q: %v", ocispec.ImageIndexFile, m.Digest, err)
		}
		if !manifestType(m.MediaType) {
			return archiveSummary{}, notOCI("%s: %s has media type %q, not a manifest or index", ocispec.ImageIndexFile, m.Digest, m.MediaType)
		}
		size, ok := blobs[m.Digest]
		if !ok {
			return archiveSummary{}, notOCI("%s lists %s, which the archive lacks", ocispec.ImageIndexFile, m.Digest)
		}
		if size != m.Size {
			return archiveSummary{}, notOCI("blob %s has %d bytes, %s says %d", m.Digest, size, ocispec.ImageIndexFile, m.Size)
		}
		sum.manifests = append(sum.manifests, m)
		if n := imageName(m.Annotations); n != "" {
			sum.names = append(sum.names, n)
		}
	}
	if len(sum.names) == 0 {
		return archiveSummary{}, notOCI("%s names no image (annotation %s, or %s with a repository)",
			ocispec.ImageIndexFile, images.AnnotationImageName, ocispec.AnnotationRefName)
	}
	return sum, nil
}

// imageName is the name containerd's Import gives a manifest with our ref
// translator: containerd's own annotation, else a full OCI ref name. A bare
// tag ("latest") names no image: there is no repository to put it in.
func imageName(annotations map[string]string) string {
	if n := annotations[images.AnnotationImageName]; n != "" {
		return n
	}
	return fullRef(annotations[ocispec.AnnotationRefName])
}

// fullRef keeps only references that name a repository.
func fullRef(ref string) string {
	if strings.ContainsAny(ref, "/:@") {
		return ref
	}
	return ""
}

func manifestType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2ManifestList:
		return true
	}
	return false
}

// entryName normalizes a tar entry name ("./index.json" → "index.json") and
// refuses names that climb out of the archive.
func entryName(raw string) (string, error) {
	for _, part := range strings.Split(raw, "/") {
		if part == ".." {
			return "", notOCI("entry %q leaves the archive", raw)
		}
	}
	return strings.TrimPrefix(path.Clean("/"+raw), "/"), nil
}

// blobDigest parses "blobs/<algorithm>/<encoded>".
func blobDigest(name string) (digest.Digest, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 {
		return "", notOCI("unexpected blob path %q", name)
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	if err := d.Validate(); err != nil {
		return "", notOCI("blob %q: %v", name, err)
	}
	return d, nil
}

// readJSON decodes at most max bytes of r into v.
func readJSON(r io.Reader, max int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return err
	}
	if int64(len(b)) > max {
		return fmt.Errorf("larger than %d bytes", max)
	}
	return json.Unmarshal(b, v)
}

func notOCI(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotOCIArchive, fmt.Sprintf(format, args...))
}
