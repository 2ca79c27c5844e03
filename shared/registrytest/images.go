package registrytest

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OCIArchive reads the image of an OCI image-layout tarball (the base image
// scripts/build-base-image.sh makes; testenv.BaseImage builds it).
func OCIArchive(t testing.TB, tarPath string) v1.Image {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", tarPath, err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			out.Close()
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("read the OCI layout of %s: %v", tarPath, err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) == 0 {
		t.Fatalf("index of %s: %v (%d manifests)", tarPath, err, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// WithData is base with layers data layers added, about size bytes in all,
// each an uncompressed tar holding one file /data/layer-N of bytes from a
// generator seeded with seed: the same arguments give the same image (and
// digest), made at memory speed, with content no compression shrinks.
func WithData(t testing.TB, base v1.Image, size int64, layers int, seed uint64) v1.Image {
	t.Helper()
	if layers < 1 {
		layers = 1
	}
	per := size / int64(layers)
	rng := rand.NewChaCha8(seedBytes(seed))
	var add []v1.Layer
	for i := range layers {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, per)
		_, _ = rng.Read(body)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/layer-%d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: per}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		add = append(add, static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer))
	}
	img, err := mutate.AppendLayers(base, add...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return s
}

// ForPlatform is an index whose only manifest is img declared for os/arch
// (and its config saying so): an image an agent of another platform cannot
// run.
func ForPlatform(t testing.TB, img v1.Image, os, arch string) v1.ImageIndex {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: os, Architecture: arch}}})
}

// WithAnnotation is img with a manifest annotation of n bytes (a manifest
// over the 4 MiB every puller should refuse).
func WithAnnotation(t testing.TB, img v1.Image, n int) v1.Image {
	t.Helper()
	out, ok := mutate.Annotations(img, map[string]string{"org.example.padding": strings.Repeat("x", n)}).(v1.Image)
	if !ok {
		t.Fatal("annotations of an image are not an image")
	}
	return out
}

// remoteOpts authenticates as user (empty: anonymously) and trusts the CA.
func (r *Registry) remoteOpts(user string) []remote.Option {
	opts := []remote.Option{remote.WithTransport(r.HTTPClient().Transport.(*http.Transport))}
	if user != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: user, Password: r.opts.Users[user]}))
	}
	return opts
}

func (r *Registry) reference(host, repoTag string) name.Reference {
	ref, err := name.ParseReference(host+"/"+repoTag, name.WeakValidation)
	if err != nil {
		r.t.Fatal(err)
	}
	return ref
}

// pushUser is who pushes: the first user when the registry has users.
func (r *Registry) pushUser() string {
	for u := range r.opts.Users {
		return u
	}
	return ""
}

// Push writes img as repo:tag ("lab/base:1") and returns its manifest's
// digest.
func (r *Registry) Push(img v1.Image, repoTag string) string {
	r.t.Helper()
	if err := remote.Write(r.reference(r.Host, repoTag), img, r.remoteOpts(r.pushUser())...); err != nil {
		r.t.Fatalf("push %s to %s: %v", repoTag, r.Host, err)
	}
	d, err := img.Digest()
	if err != nil {
		r.t.Fatal(err)
	}
	return d.String()
}

// PushIndex writes an index as repo:tag and returns its digest.
func (r *Registry) PushIndex(idx v1.ImageIndex, repoTag string) string {
	r.t.Helper()
	if err := remote.WriteIndex(r.reference(r.Host, repoTag), idx, r.remoteOpts(r.pushUser())...); err != nil {
		r.t.Fatalf("push index %s to %s: %v", repoTag, r.Host, err)
	}
	d, err := idx.Digest()
	if err != nil {
		r.t.Fatal(err)
	}
	return d.String()
}
