// Package registry reaches OCI registries the way the managers (resolving a
// session's image when it is created) and the agents (pulling it) must
// agree on: a reference whose host is a registry object's host is reached
// with that object's credentials and TLS settings; any other goes to the
// host the reference names, over HTTPS, anonymously. It builds containerd's
// docker resolver and says in plain words why a registry refused.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	remoteerrors "github.com/containerd/containerd/remotes/errors"
	"github.com/containerd/log"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/imageref"
)

// MaxManifestSize is the largest manifest (or index) Berth reads: larger
// ones are refused before they are fetched. (containerd's own bound is
// 4·1048·1048 bytes; this one is 4 MiB.)
const MaxManifestSize = 4 << 20

// Errors a caller can act on; Explain wraps the resolver's errors in them.
var (
	ErrNotFound     = errors.New("not found")
	ErrUnauthorized = errors.New("not authorised")
	ErrTooLarge     = errors.New("manifest too large")
	ErrUnreachable  = errors.New("registry unreachable")
)

// Timeouts of a registry connection. No bound on a whole transfer: a large
// layer on a slow link takes what it takes (the agent watches for stalls).
const (
	dialTimeout     = 10 * time.Second
	headerTimeout   = 30 * time.Second
	handshakeTimout = 10 * time.Second
)

// dockerHubEndpoint is where references of docker.io are fetched from.
const dockerHubEndpoint = "registry-1.docker.io"

// For returns the credentials in creds that serve ref's host, or nil.
func For(creds []api.RegistryCredentials, host string) *api.RegistryCredentials {
	for i := range creds {
		if imageref.SameHost(creds[i].Host, host) {
			return &creds[i]
		}
	}
	return nil
}

// CheckCA says whether pem holds at least one certificate.
func CheckCA(pem string) error {
	if pem == "" {
		return nil
	}
	if !x509.NewCertPool().AppendCertsFromPEM([]byte(pem)) {
		return errors.New("ca_pem holds no PEM certificate (paste the registry's CA certificate, -----BEGIN CERTIFICATE----- and all)")
	}
	return nil
}

// client is the HTTP client of one registry: its CA added to the system's
// roots.
func client(c *api.RegistryCredentials) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = handshakeTimout
	tr.ResponseHeaderTimeout = headerTimeout
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if c != nil && c.CAPEM != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(c.CAPEM)) {
			return nil, fmt.Errorf("registry %s: %w", c.Name, CheckCA(c.CAPEM))
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr}, nil
}

// endpoint is where a host's registry API is dialled.
func endpoint(host string) string {
	if imageref.HostKey(host) == imageref.DockerHub {
		return dockerHubEndpoint
	}
	return host
}

// Hosts is containerd's registry configuration for creds: each registry
// object's host with its scheme, CA and credentials; any other host over
// HTTPS with the system's roots, anonymously.
func Hosts(creds []api.RegistryCredentials) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		c := For(creds, host)
		if c != nil && c.Error != "" {
			return nil, fmt.Errorf("registry %s: %s", c.Name, c.Error)
		}
		hc, err := client(c)
		if err != nil {
			return nil, err
		}
		rh := docker.RegistryHost{Client: hc, Host: endpoint(host), Scheme: "https", Path: "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve}
		var opts []docker.AuthorizerOpt
		opts = append(opts, docker.WithAuthClient(hc))
		if c != nil {
			rh.Host = endpoint(c.Host)
			if c.InsecureHTTP {
				rh.Scheme = "http"
			}
			if c.Username != "" {
				user, pass := c.Username, c.Password
				opts = append(opts, docker.WithAuthCreds(func(string) (string, string, error) { return user, pass, nil }))
			}
		}
		rh.Authorizer = docker.NewDockerAuthorizer(opts...)
		return []docker.RegistryHost{rh}, nil
	}
}

// Resolver is containerd's resolver over Hosts(creds).
func Resolver(creds []api.RegistryCredentials) remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{Hosts: Hosts(creds)})
}

// Head resolves ref's manifest through its registry (a HEAD request) and
// refuses one over MaxManifestSize. Errors are Explain's.
func Head(ctx context.Context, ref string, creds []api.RegistryCredentials) (ocispec.Descriptor, error) {
	r, err := imageref.Parse(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	_, desc, err := Resolver(creds).Resolve(Quiet(ctx), r.Normal)
	if err != nil {
		return ocispec.Descriptor{}, Explain(r, creds, err)
	}
	if err := CheckManifest(r.Normal, desc); err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

// Quiet gives ctx a logger that drops what containerd's registry and pull
// code log ("trying next host", ...): every failure it logs comes back as
// an error, which the caller reports with its context.
func Quiet(ctx context.Context) context.Context {
	l := logrus.New()
	l.Out = io.Discard
	return log.WithLogger(ctx, logrus.NewEntry(l))
}

// CheckManifest refuses a manifest or index descriptor over
// MaxManifestSize.
func CheckManifest(ref string, desc ocispec.Descriptor) error {
	if desc.Size > MaxManifestSize {
		return explained(ErrTooLarge, nil, "the manifest of %s is %d bytes, over Berth's limit of %d (4 MiB)", ref, desc.Size, MaxManifestSize)
	}
	return nil
}

// Explain turns a resolver's error into one that says what the registry
// answered and what to do, wrapping ErrNotFound, ErrUnauthorized,
// ErrTooLarge or ErrUnreachable when it is one of those.
func Explain(r imageref.Ref, creds []api.RegistryCredentials, err error) error {
	if err == nil {
		return nil
	}
	where := "registry " + r.Host
	how := "anonymously; a registry object (berth registry add) gives it credentials"
	if c := For(creds, r.Host); c != nil {
		where = "registry " + c.Name + " (" + r.Host + ")"
		how = "with its username " + c.Username
		if c.Username == "" {
			how = "anonymously"
		}
	}
	var status remoteerrors.ErrUnexpectedStatus
	var nerr net.Error
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	msg := err.Error()
	switch {
	case errors.As(err, &status) && (status.StatusCode == http.StatusUnauthorized || status.StatusCode == http.StatusForbidden),
		errors.Is(err, docker.ErrInvalidAuthorization):
		return explained(ErrUnauthorized, err, "%s refused %s, pulled %s (%s)", where, r.Normal, how, registryWords(err))
	case strings.Contains(msg, "byte manifest"):
		// containerd's own bound, met before ours could be.
		return explained(ErrTooLarge, err, "%s: the manifest of %s is over the limit of 4 MiB (%v)", where, r.Normal, err)
	case errdefs.IsNotFound(err):
		return explained(ErrNotFound, err, "%s has no image %s (%v): check the name and the tag", where, r.Normal, err)
	case errors.As(err, &uerr), errors.As(err, &herr), strings.Contains(msg, "x509:"), strings.Contains(msg, "tls:"):
		return explained(ErrUnreachable, err, "%s: TLS failed (%v); give the registry object the registry's CA in ca_pem, or check its url", where, err)
	case errors.As(err, &nerr), strings.Contains(msg, "connection refused"), strings.Contains(msg, "no such host"):
		return explained(ErrUnreachable, err, "%s could not be reached (%v)", where, err)
	case errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(msg, "unexpected EOF"), strings.Contains(msg, "connection reset"):
		return explained(ErrUnreachable, err, "%s broke off the transfer of %s (%v); pull again once it serves", where, r.Normal, err)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return explained(ErrUnreachable, err, "%s speaks plain HTTP; set insecure_http on its registry object if that is meant: %v", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// explainedError is a registry's failure in words: its text is the
// sentence alone; errors.Is finds both its kind and its cause.
type explainedError struct {
	msg         string
	kind, cause error
}

func (e *explainedError) Error() string   { return e.msg }
func (e *explainedError) Unwrap() []error { return []error{e.kind, e.cause} }

func explained(kind, cause error, format string, args ...any) error {
	return &explainedError{msg: fmt.Sprintf(format, args...), kind: kind, cause: cause}
}

// registryWords is the registry's own answer in an error, as short as it
// says it.
func registryWords(err error) string {
	var status remoteerrors.ErrUnexpectedStatus
	if errors.As(err, &status) {
		body := strings.TrimSpace(string(status.Body))
		if len(body) > 300 {
			body = body[:300] + "…"
		}
		if body != "" {
			return status.Status + ": " + body
		}
		return status.Status
	}
	return err.Error()
}

// Probe checks that a registry answers at its URL over the transport its
// object says (TLS with its CA, or plain HTTP): any HTTP answer to GET
// /v2/ will do, an authentication challenge included.
func Probe(ctx context.Context, c api.RegistryCredentials) error {
	hc, err := client(&c)
	if err != nil {
		return err
	}
	scheme := "https"
	if c.InsecureHTTP {
		scheme = "http"
	}
	url := scheme + "://" + endpoint(c.Host) + "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("registry url: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Explain(imageref.Ref{Host: c.Host, Normal: c.Host}, []api.RegistryCredentials{c}, err)
	}
	resp.Body.Close()
	if resp.Header.Get("Docker-Distribution-Api-Version") == "" && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("%s answered GET /v2/ with %s, not as an OCI registry does: check the url", url, resp.Status)
	}
	return nil
}
