package containerd

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/containerd/containerd/images"
	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tarEntry is one file of a test archive.
type tarEntry struct {
	name string
	body []byte
}

func tarOf(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func blobEntry(b []byte) tarEntry {
	d := digest.FromBytes(b)
	return tarEntry{name: "blobs/" + d.Algorithm().String() + "/" + d.Encoded(), body: b}
}

// ociLayout builds the entries of a minimal valid OCI archive: one image
// (config + empty layer list) named by the given index annotations. The
// index is last so that tests can replace it.
func ociLayout(t testing.TB, annotations map[string]string) []tarEntry {
	t.Helper()
	cfg := mustJSON(t, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	manifest := mustJSON(t, ocispec.Manifest{
		Versioned: imgspecs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers:    []ocispec.Descriptor{},
	})
	index := mustJSON(t, ocispec.Index{
		Versioned: imgspecs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{
			MediaType:   ocispec.MediaTypeImageManifest,
			Digest:      digest.FromBytes(manifest),
			Size:        int64(len(manifest)),
			Annotations: annotations,
		}},
	})
	return []tarEntry{
		{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		blobEntry(cfg),
		blobEntry(manifest),
		{name: "index.json", body: index},
	}
}

func named(name string) map[string]string {
	return map[string]string{images.AnnotationImageName: name}
}

func TestValidateArchiveAccepts(t *testing.T) {
	plain := tarOf(t, ociLayout(t, named("docker.io/berth/base:latest")))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	dotSlash := ociLayout(t, map[string]string{ocispec.AnnotationRefName: "berth/base:v1"})
	for i := range dotSlash {
		dotSlash[i].name = "./" + dotSlash[i].name
	}

	for name, archive := range map[string][]byte{
		"plain":                  plain,
		"gzip":                   gz.Bytes(),
		"./ names, OCI ref.name": tarOf(t, dotSlash),
	} {
		t.Run(name, func(t *testing.T) {
			sum, err := validateArchive(bytes.NewReader(archive))
			if err != nil {
				t.Fatalf("valid archive refused: %v", err)
			}
			if len(sum.manifests) != 1 || len(sum.names) != 1 {
				t.Errorf("summary = %+v", sum)
			}
		})
	}
}

func TestValidateArchiveRefuses(t *testing.T) {
	good := ociLayout(t, named("berth/base:latest"))
	without := func(name string) []tarEntry {
		var out []tarEntry
		for _, e := range good {
			if e.name != name {
				out = append(out, e)
			}
		}
		return out
	}
	withIndex := func(idx string) []tarEntry {
		return append(without("index.json"), tarEntry{name: "index.json", body: []byte(idx)})
	}
	manifestBlob := good[2]
	manifestDigest := "sha256:" + strings.TrimPrefix(manifestBlob.name, "blobs/sha256/")

	cases := map[string]struct {
		archive []byte
		want    string
	}{
		"garbage":        {[]byte("this is not a tarball at all, just some text that is long enough to fill a tar header block maybe"), "reading tar"},
		"empty":          {nil, "no index.json"},
		"docker save":    {tarOf(t, []tarEntry{{name: "manifest.json", body: []byte(`[]`)}}), "docker save"},
		"no oci-layout":  {tarOf(t, without("oci-layout")), "no oci-layout"},
		"bad index json": {tarOf(t, withIndex("{")), "index.json"},
		"schema 1":       {tarOf(t, withIndex(`{"schemaVersion":1,"manifests":[]}`)), "schemaVersion 1"},
		"no manifests":   {tarOf(t, withIndex(`{"schemaVersion":2,"manifests":[]}`)), "lists no manifest"},
		"missing blob":   {tarOf(t, without(manifestBlob.name)), "which the archive lacks"},
		"wrong size": {tarOf(t, withIndex(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"`+
			manifestDigest+`","size":1,"annotations":{"io.containerd.image.name":"x/y:z"}}]}`)), "bytes"},
		"bad digest": {tarOf(t, withIndex(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:xyz","size":1}]}`)), "digest"},
		"layer as manifest": {tarOf(t, withIndex(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"`+
			manifestDigest+`","size":1}]}`)), "media type"},
		"unnamed":         {tarOf(t, ociLayout(t, map[string]string{ocispec.AnnotationRefName: "latest"})), "names no image"},
		"dot dot":         {tarOf(t, append(good, tarEntry{name: "../../etc/passwd", body: []byte("x")})), "leaves the archive"},
		"bad blob name":   {tarOf(t, append(good, tarEntry{name: "blobs/sha256/zz", body: []byte("x")})), "blob"},
		"duplicate index": {tarOf(t, append(good, good[3])), "duplicate"},
		"huge index":      {tarOf(t, withIndex(`{"schemaVersion":2,"annotations":{"x":"`+strings.Repeat("a", maxIndexFile)+`"}}`)), "larger than"},
		"bad gzip":        {[]byte{0x1f, 0x8b, 0, 1, 2, 3}, "gzip"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := validateArchive(bytes.NewReader(c.archive))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrNotOCIArchive) {
				t.Errorf("error %v is not ErrNotOCIArchive", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// FuzzImportImage feeds arbitrary bytes to the validation that ImportImage
// runs before containerd sees an archive: it must never panic, and what it
// accepts must be consistent (manifests that exist, at least one name).
func FuzzImportImage(f *testing.F) {
	good := ociLayout(f, named("berth/base:latest"))
	f.Add(tarOf(f, good))
	f.Add(tarOf(f, ociLayout(f, map[string]string{ocispec.AnnotationRefName: "latest"})))
	f.Add(tarOf(f, []tarEntry{{name: "manifest.json", body: []byte(`[]`)}}))
	f.Add(tarOf(f, good[:3]))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		sum, err := validateArchive(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrNotOCIArchive) {
				t.Fatalf("refusal %v is not ErrNotOCIArchive", err)
			}
			return
		}
		if len(sum.manifests) == 0 || len(sum.names) == 0 {
			t.Fatalf("accepted an archive with no manifest or name: %+v", sum)
		}
		for _, m := range sum.manifests {
			if m.Digest.Validate() != nil {
				t.Fatalf("accepted invalid digest %q", m.Digest)
			}
		}
	})
}
