package registry_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/registry"
	"github.com/berth-cluster/berth/shared/registrytest"
	"github.com/berth-cluster/berth/shared/tlsgen"
)

// Resolving against a real registry (Debian's docker-registry): what a
// session's create asks before it takes an image nobody has.

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestHeadFindsAnImageOverPlainHTTPTLSAndBasicAuth(t *testing.T) {
	img := registrytest.WithData(t, empty.Image, 64<<10, 2, 1)
	for _, c := range []struct {
		name string
		opts registrytest.Options
		user string
	}{
		{"plain HTTP", registrytest.Options{}, ""},
		{"TLS with a berth tls CA", registrytest.Options{TLS: true}, ""},
		{"TLS and htpasswd", registrytest.Options{TLS: true, Users: map[string]string{"lab": "s3cret-pass"}}, "lab"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := registrytest.Start(t, c.opts)
			want := reg.Push(img, "lab/data:1")
			desc, err := registry.Head(ctx(t), reg.Ref("lab/data:1"), []api.RegistryCredentials{reg.Credentials(c.user)})
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest.String() != want {
				t.Fatalf("digest %s, want %s", desc.Digest, want)
			}
		})
	}
}

func TestHeadSaysWhyTheRegistryRefused(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{TLS: true, Users: map[string]string{"lab": "s3cret-pass"}})
	reg.Push(registrytest.WithData(t, empty.Image, 1<<10, 1, 2), "lab/data:1")
	good := reg.Credentials("lab")
	wrong := good
	wrong.Password = "not-the-password"
	anonymous := good
	anonymous.Username, anonymous.Password = "", ""
	noCA := good
	noCA.CAPEM = ""
	for _, c := range []struct {
		name  string
		ref   string
		creds []api.RegistryCredentials
		is    error
		says  string
	}{
		{"wrong password", reg.Ref("lab/data:1"), []api.RegistryCredentials{wrong}, registry.ErrUnauthorized, "401 Unauthorized"},
		{"no credentials", reg.Ref("lab/data:1"), []api.RegistryCredentials{anonymous}, registry.ErrUnauthorized, "anonymously"},
		{"unknown tag", reg.Ref("lab/data:404"), []api.RegistryCredentials{good}, registry.ErrNotFound, "check the name and the tag"},
		{"unknown repository", reg.Ref("lab/nothing:1"), []api.RegistryCredentials{good}, registry.ErrNotFound, "has no image"},
		{"CA not given", reg.Ref("lab/data:1"), []api.RegistryCredentials{noCA}, registry.ErrUnreachable, "ca_pem"},
		{"no registry object: HTTPS with the system's roots", reg.Ref("lab/data:1"), nil, registry.ErrUnreachable, "TLS failed"},
		{"manager could not decrypt", reg.Ref("lab/data:1"), []api.RegistryCredentials{{Name: "test", Host: reg.Host, Error: "sealed with another key"}}, nil, "sealed with another key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := registry.Head(ctx(t), c.ref, c.creds)
			if err == nil {
				t.Fatal("resolved")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error %v is not %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q does not say %q", err, c.says)
			}
		})
	}
}

func TestAManifestOverFourMiBIsRefusedBeforeItIsRead(t *testing.T) {
	// docker-registry refuses to store such a manifest; a registry that
	// serves one anyway is go-containerregistry's.
	reg := registrytest.StartInProcess(t)
	base := registrytest.WithData(t, empty.Image, 1<<10, 1, 3)
	reg.Push(registrytest.WithAnnotation(t, base, 4<<20+1024), "lab/huge:1")
	reg.Push(registrytest.WithAnnotation(t, base, 1<<20), "lab/big:1")
	creds := []api.RegistryCredentials{reg.Credentials("")}
	_, err := registry.Head(ctx(t), reg.Ref("lab/huge:1"), creds)
	if !errors.Is(err, registry.ErrTooLarge) || !strings.Contains(err.Error(), "4 MiB") {
		t.Fatalf("a 4 MiB manifest: %v", err)
	}
	// The control: a large manifest under the limit resolves.
	if _, err := registry.Head(ctx(t), reg.Ref("lab/big:1"), creds); err != nil {
		t.Fatalf("a 1 MiB manifest: %v", err)
	}
}

func TestProbeTellsAnUnreachableURLAndABadCA(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{TLS: true})
	if err := registry.Probe(ctx(t), reg.Credentials("")); err != nil {
		t.Fatalf("probe of a good registry: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	other, err := tlsgen.NewCA(time.Now(), "another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	plainToTLS := reg.Credentials("")
	plainToTLS.InsecureHTTP, plainToTLS.CAPEM = true, ""
	for _, c := range []struct {
		name  string
		creds api.RegistryCredentials
		says  string
	}{
		{"nothing listens", api.RegistryCredentials{Name: "x", Host: closed, InsecureHTTP: true}, "could not be reached"},
		{"another CA", api.RegistryCredentials{Name: "x", Host: reg.Host, CAPEM: string(other.CertPEM)}, "TLS failed"},
		{"not PEM", api.RegistryCredentials{Name: "x", Host: reg.Host, CAPEM: "not a certificate"}, "no PEM certificate"},
		{"plain HTTP to a TLS port", plainToTLS, "answered GET /v2/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := registry.Probe(ctx(t), c.creds)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("probe: %v, want it to say %q", err, c.says)
			}
		})
	}
}
