package containerd

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/registry"
	"github.com/berth-cluster/berth/shared/registrytest"
)

// Pulls from a real registry (Debian's docker-registry) into a real,
// private containerd.

// progressLog keeps what a pull reported.
type progressLog struct {
	mu          sync.Mutex
	done, total int64
	calls       int
}

func (p *progressLog) note(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	p.calls++
}

func (p *progressLog) get() (int64, int64, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done, p.total, p.calls
}

func TestAPulledImageIsWholeUnpackedAndRuns(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	base := registrytest.OCIArchive(t, testenv.BaseImage(t))
	digest := reg.Push(base, "lab/base:1")
	e := newEnv(t, false)
	rt := e.runtime(t)
	ctx := testCtx(t)
	ref := reg.Ref("lab/base:1")

	if _, err := rt.Image(ctx, ref); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("before the pull: %v", err)
	}
	var prog progressLog
	img, err := rt.Pull(ctx, runtime.PullRequest{Ref: ref, Registries: []api.RegistryCredentials{reg.Credentials("")}, Progress: prog.note})
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != ref || img.Digest != digest || img.Size <= 0 || img.LastUsed.IsZero() {
		t.Fatalf("pulled %+v, want %s at %s with a size and a use", img, ref, digest)
	}
	if done, total, calls := prog.get(); calls == 0 || done != total || total < img.Size {
		t.Fatalf("progress %d/%d after %d calls, want whole and at least %d", done, total, calls, img.Size)
	}
	got, err := rt.Image(ctx, ref)
	if err != nil || got.Digest != digest {
		t.Fatalf("Image after the pull: %+v, %v", got, err)
	}

	spec := baseSpec(uniqueID("pulled"), "sh", "-c", "echo from-the-registry")
	spec.Image = ref
	if _, err := rt.Run(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Remove(context.Background(), spec.ID) })
	cs, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ImageDigest != digest {
		t.Fatalf("containers %+v, want one made from %s", cs, digest)
	}
	// In use, the image stays; once its container is gone, it goes.
	if err := rt.RemoveImage(ctx, ref); !errors.Is(err, runtime.ErrImageInUse) || !strings.Contains(err.Error(), spec.ID) {
		t.Fatalf("removing an image in use: %v", err)
	}
	waitExited(t, rt, spec.ID, 30*time.Second)
	if err := rt.Remove(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if err := rt.RemoveImage(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Image(ctx, ref); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("after removal: %v", err)
	}
	if err := rt.RemoveImage(ctx, ref); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("removing it again: %v", err)
	}
	du, err := rt.ImageDisk(ctx)
	if err != nil || du.TotalBytes <= 0 || du.UsedBytes <= 0 || !strings.HasPrefix(du.Path, e.cfg.TempDir) {
		t.Fatalf("image disk %+v, %v: want the private containerd's store", du, err)
	}
}

func TestPullsOverTLSWithBasicAuthAndWhyTheyFail(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{TLS: true, Users: map[string]string{"lab": "s3cret-pass"}})
	small := registrytest.WithData(t, registrytest.OCIArchive(t, testenv.BaseImage(t)), 64<<10, 1, 7)
	reg.Push(small, "lab/small:1")
	reg.PushIndex(registrytest.ForPlatform(t, small, "linux", "arm64-not-this"), "lab/arm:1")
	big := registrytest.StartInProcess(t)
	big.Push(registrytest.WithAnnotation(t, registrytest.WithData(t, empty.Image, 1<<10, 1, 8), 4<<20+1024), "lab/huge:1")

	e := newEnv(t, false)
	rt := e.runtime(t)
	ctx := testCtx(t)
	good := reg.Credentials("lab")
	wrong := good
	wrong.Password = "not-it"
	if _, err := rt.Pull(ctx, runtime.PullRequest{Ref: reg.Ref("lab/small:1"), Registries: []api.RegistryCredentials{good}}); err != nil {
		t.Fatalf("pull with the right password over TLS: %v", err)
	}
	for _, c := range []struct {
		name, ref string
		creds     []api.RegistryCredentials
		is        error
		says      string
	}{
		{"wrong password", reg.Ref("lab/small:2"), []api.RegistryCredentials{wrong}, registry.ErrUnauthorized, "401 Unauthorized"},
		{"unknown tag", reg.Ref("lab/small:404"), []api.RegistryCredentials{good}, registry.ErrNotFound, "check the name and the tag"},
		{"another platform only", reg.Ref("lab/arm:1"), []api.RegistryCredentials{good}, nil, "no variant for this node's platform"},
		{"manifest over 4 MiB", big.Ref("lab/huge:1"), []api.RegistryCredentials{big.Credentials("")}, registry.ErrTooLarge, "4 MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := rt.Pull(ctx, runtime.PullRequest{Ref: c.ref, Registries: c.creds})
			if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("pull: %v; want an error saying %q", err, c.says)
			}
			if _, err := rt.Image(ctx, c.ref); !errors.Is(err, runtime.ErrImageNotFound) {
				t.Fatalf("after a failed pull the image is there: %v", err)
			}
			imgs, err := rt.Images(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, im := range imgs {
				if im.Name == c.ref {
					t.Fatalf("a failed pull is listed: %+v", im)
				}
			}
		})
	}
}

// A registry that dies while a layer streams: the pull fails with the
// reason, and nothing half-pulled is listed.
func TestAPullBrokenOffLeavesNoImage(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	reg.Push(registrytest.WithData(t, empty.Image, 8<<20, 2, 9), "lab/data:1")
	slow := reg.Throttled(2 << 20) // 2 MiB/s: about 4 s for the whole
	e := newEnv(t, false)
	rt := e.runtime(t)
	ctx := testCtx(t)
	ref := slow + "/lab/data:1"
	creds := []api.RegistryCredentials{{Name: "slow", Host: slow, InsecureHTTP: true}}
	var prog progressLog
	errc := make(chan error, 1)
	go func() {
		_, err := rt.Pull(ctx, runtime.PullRequest{Ref: ref, Registries: creds, Progress: prog.note})
		errc <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		done, total, _ := prog.get()
		if done > 1<<20 && done < total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress seen: %d/%d", done, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	reg.Stop()
	err := <-errc
	if err == nil {
		t.Fatal("the pull succeeded with its registry stopped")
	}
	t.Logf("pull failed: %v", err)
	if _, err := rt.Image(ctx, ref); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("after the broken pull: %v", err)
	}
}

// A node whose image store is full: the pull fails saying so, and leaves
// nothing listed.
func TestAPullOntoAFullDiskSaysSo(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	reg.Push(registrytest.WithData(t, empty.Image, 48<<20, 3, 10), "lab/data:1")
	socket := testenv.ContainerdOnSmallDisk(t, 24<<20)
	e := newEnv(t, false)
	e.cfg.Socket, e.cfg.Namespace = socket, testenv.Namespace(t)
	rt := e.runtime(t)
	ctx := testCtx(t)
	ref := reg.Ref("lab/data:1")
	_, err := rt.Pull(ctx, runtime.PullRequest{Ref: ref, Registries: []api.RegistryCredentials{reg.Credentials("")}})
	if err == nil || !strings.Contains(err.Error(), "image store is full") {
		t.Fatalf("pull onto a full disk: %v", err)
	}
	if imgs, err := rt.Images(ctx); err != nil || len(imgs) != 0 {
		t.Fatalf("images after a pull that did not fit: %+v, %v", imgs, err)
	}
}
