// Package registrytest gives tests a real OCI registry: Debian's
// docker-registry (the CNCF distribution registry, 2.8) started on a
// loopback port with its own configuration and storage directory, over
// plain HTTP or TLS (a CA made with shared/tlsgen, as `berth tls` makes
// them), with or without htpasswd basic auth (bcrypt). Images are built
// here (the base image's OCI tarball, generated data layers) and pushed
// with go-containerregistry. It is test support: import it only from
// _test.go files.
//
// Without the docker-registry binary a test is skipped, except when CI is
// "true": then it fails, naming the package to install
// (scripts/install-deps.sh).
package registrytest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/tlsgen"
)

// Binary is Debian's registry (package docker-registry).
const Binary = "docker-registry"

// Options says how the registry serves.
type Options struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 from a new CA
	// (Registry.CAPEM).
	TLS bool
	// Users, when set, turns on htpasswd basic auth with these
	// user → password pairs.
	Users map[string]string
}

// Registry is a running registry.
type Registry struct {
	t     testing.TB
	opts  Options
	dir   string
	Host  string // 127.0.0.1:PORT
	CAPEM string // with TLS: the CA that signed its certificate

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// inProcess is the server of StartInProcess (nil: docker-registry).
	inProcess *httptest.Server
	// proxied are the connections Throttled carries: a registry that
	// stops breaks them, whatever the kernel still buffers.
	proxied map[net.Conn]bool
}

// StartInProcess runs go-containerregistry's registry (pkg/registry) in
// this process over plain HTTP, for what docker-registry refuses to store:
// a manifest over 4 MiB (its own limit), which a puller must refuse to
// read from a registry that serves one.
func StartInProcess(t testing.TB) *Registry {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return &Registry{t: t, Host: strings.TrimPrefix(srv.URL, "http://"), inProcess: srv}
}

// Start runs a registry for t, stopped when t ends.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		bin = "/usr/bin/" + Binary
		if _, serr := os.Stat(bin); serr != nil {
			msg := "a registry needs " + Binary + " (Debian package docker-registry, scripts/install-deps.sh)"
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI=true and %s", msg)
			}
			t.Skip(msg)
		}
	}
	r := &Registry{t: t, opts: opts, dir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(r.dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if opts.TLS {
		r.writeTLS()
	}
	if len(opts.Users) > 0 {
		r.writeHtpasswd()
	}
	var last error
	for range 5 {
		r.Host = freeAddr(t)
		if last = r.start(bin); last == nil {
			t.Cleanup(r.Stop)
			return r
		}
	}
	t.Fatalf("start %s: %v", Binary, last)
	return nil
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (r *Registry) writeTLS() {
	now := time.Now()
	ca, err := tlsgen.NewCA(now, "registrytest CA", 24*time.Hour)
	if err != nil {
		r.t.Fatal(err)
	}
	is, err := ca.Issue(now, tlsgen.Request{Role: tlsgen.Agent, CommonName: "registry", Validity: time.Hour})
	if err != nil {
		r.t.Fatal(err)
	}
	r.CAPEM = string(ca.CertPEM)
	if err := os.WriteFile(filepath.Join(r.dir, "cert.pem"), is.CertPEM, 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "key.pem"), is.KeyPEM, 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func (r *Registry) writeHtpasswd() {
	var b strings.Builder
	for user, pass := range r.opts.Users {
		// MinCost: the registry checks the hash on every request.
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			r.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", user, h)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "htpasswd"), []byte(b.String()), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func (r *Registry) config() string {
	c := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
`, filepath.Join(r.dir, "data"), r.Host)
	if r.opts.TLS {
		c += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", filepath.Join(r.dir, "cert.pem"), filepath.Join(r.dir, "key.pem"))
	}
	if len(r.opts.Users) > 0 {
		c += fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", filepath.Join(r.dir, "htpasswd"))
	}
	return c
}

func (r *Registry) start(bin string) error {
	cfg := filepath.Join(r.dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(r.config()), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(r.dir, "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Pdeathsig fires when the thread that forked the registry ends, not
	// the process, and Go ends threads: the agent's network code locks a
	// thread into a new network namespace and lets it die. The registry is
	// forked from a thread held by this goroutine until it exits, which no
	// other goroutine can take.
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("%s exited at start:\n%s", Binary, r.Log())
		default:
		}
		if r.answers() {
			r.mu.Lock()
			r.cmd, r.done = cmd, done
			r.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return fmt.Errorf("%s did not answer on %s within 20s:\n%s", Binary, r.Host, r.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers reports whether GET /v2/ gets an answer from this registry.
func (r *Registry) answers() bool {
	req, _ := http.NewRequest(http.MethodGet, r.URL()+"/v2/", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := r.HTTPClient().Do(req.WithContext(ctx))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.Header.Get("Docker-Distribution-Api-Version") != ""
}

// Log is what the registry wrote.
func (r *Registry) Log() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "registry.log"))
	return string(b)
}

// Stop kills the registry (as a crash would: connections break mid-way).
// Its storage stays; Restart serves it again on the same address.
func (r *Registry) Stop() {
	r.mu.Lock()
	for c := range r.proxied {
		c.Close()
	}
	r.proxied = nil
	r.mu.Unlock()
	if r.inProcess != nil {
		r.inProcess.CloseClientConnections()
		r.inProcess.Close()
		return
	}
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Restart starts the stopped registry again on its address.
func (r *Registry) Restart() {
	r.t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		bin = "/usr/bin/" + Binary
	}
	if err := r.start(bin); err != nil {
		r.t.Fatal(err)
	}
}

// URL is the registry's base URL (https:// with TLS).
func (r *Registry) URL() string {
	if r.opts.TLS {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// Ref is the full reference of repo:tag on this registry.
func (r *Registry) Ref(repoTag string) string { return r.Host + "/" + repoTag }

// Credentials are what an agent needs to pull from this registry as user
// (empty: anonymously).
func (r *Registry) Credentials(user string) api.RegistryCredentials {
	return api.RegistryCredentials{Name: "test", Host: r.Host, InsecureHTTP: !r.opts.TLS, Username: user,
		Password: r.opts.Users[user], CAPEM: r.CAPEM}
}

// HTTPClient trusts the registry's CA.
func (r *Registry) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.CAPEM != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(r.CAPEM))
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}
}

// Throttled starts a TCP proxy to the registry that sends what the
// registry answers at most bytesPerSecond, and returns its host:port
// (references through it name that host). It stops with the test; the
// connections it carries break when the registry stops.
func (r *Registry) Throttled(bytesPerSecond int) string {
	r.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	var wg sync.WaitGroup
	r.t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for c := range r.proxied {
			c.Close()
		}
		r.proxied = nil
		r.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", r.Host)
			if err != nil {
				c.Close()
				continue
			}
			// Small buffers: what the registry sent is what the client
			// got, give or take a window, not the whole layer.
			if tc, ok := up.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(64 << 10)
			}
			r.mu.Lock()
			if r.proxied == nil {
				r.proxied = map[net.Conn]bool{}
			}
			r.proxied[c], r.proxied[up] = true, true
			r.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, c); closeWrite(up) }()
			go func() {
				defer wg.Done()
				copySlowly(c, up, bytesPerSecond)
				c.Close()
				up.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// copySlowly copies src to dst at most rate bytes a second, in slices of a
// twentieth of a second.
func copySlowly(dst io.Writer, src io.Reader, rate int) {
	chunk := max(1, rate/20)
	buf := make([]byte, chunk)
	next := time.Now()
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			next = next.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			} else {
				next = time.Now()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}
