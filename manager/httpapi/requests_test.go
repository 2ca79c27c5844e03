package httpapi_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/httpapi"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/sign"
)

// Attacks on the cost of a request before and while it is served: bodies
// trickled a byte at a time, bodies that are not the ones signed, more
// uploads at once than a manager takes.

// rawConn is one HTTP/1.1 request written by hand, so a test can send its
// body as slowly, partly or wrongly as an attacker would.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

// dialRaw sends the request line and headers; the body is the caller's.
func dialRaw(t *testing.T, s *server.Server, method, path string, header http.Header) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", s.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, s.HTTPAddr())
	if err := header.Write(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	return &rawConn{Conn: conn, br: bufio.NewReader(conn)}
}

// trickle writes one byte of body every interval until the connection
// fails or stop is closed.
func (c *rawConn) trickle(interval time.Duration, stop <-chan struct{}) {
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
}

// answer reads the response, failing the test if none comes within d.
func (c *rawConn) answer(t *testing.T, d time.Duration) *testcluster.Response {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", d, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &testcluster.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func withLimits(l httpapi.Limits) func(*server.Config) {
	return func(cfg *server.Config) { cfg.HTTPLimits = l }
}

func jsonHeader(length int) http.Header {
	return http.Header{"Content-Type": {"application/json"}, "Content-Length": {fmt.Sprint(length)}}
}

// A client that trickles a JSON body is cut off after the body timeout
// with 408, without credentials or with them; a body that arrives at once
// is served as before. Without the deadline the trickle below would hold
// its handler for 500 s.
func TestATricklingJSONBodyIsCutOff(t *testing.T) {
	t.Parallel()
	const timeout = 600 * time.Millisecond
	s := testcluster.StartFake(t, withLimits(httpapi.Limits{BodyTimeout: timeout})).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	for _, tc := range []struct {
		name, path string
		header     http.Header
	}{
		{"a login, which needs no credentials", "/v1/auth/login", jsonHeader(10000)},
		{"an authenticated create", "/v1/users", func() http.Header {
			h := jsonHeader(10000)
			h.Set("Authorization", "Bearer "+admin)
			return h
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, s, http.MethodPost, tc.path, tc.header)
			stop := make(chan struct{})
			defer close(stop)
			start := time.Now()
			c.trickle(50*time.Millisecond, stop)
			r := c.answer(t, 10*time.Second)
			took := time.Since(start)
			p := wantProblem(t, r, http.StatusRequestTimeout, api.ProblemTimeout)
			wantDetail(t, p, "did not arrive within "+timeout.String())
			if took < timeout || took > timeout+3*time.Second {
				t.Errorf("cut off after %s, want about %s", took, timeout)
			}
		})
	}
	body := mustJSON(t, api.LoginRequest{Email: testcluster.AdminEmail, Password: testcluster.AdminPassword})
	wantStatus(t, send(t, newRequest(t, http.MethodPost, testcluster.URL(s)+"/v1/auth/login", body)), http.StatusOK)
}

// An upload must keep arriving at the minimum rate (StreamMinBytes per
// StreamWindow): one trickled below it is cut off with 408 and leaves no
// file; one that stays above it, slow as it is, is stored whole.
func TestATricklingUploadIsCutOff(t *testing.T) {
	t.Parallel()
	const window, minBytes = 500 * time.Millisecond, 4096
	e := newFolderEnv(t, withLimits(httpapi.Limits{StreamWindow: window, StreamMinBytes: minBytes}))
	tok, _ := e.user("ann")
	f := e.createFolder(tok, map[string]any{"name": "box", "host": "local"})
	h := http.Header{"Authorization": {"Bearer " + tok}, "Content-Length": {fmt.Sprint(1 << 20)}}
	c := dialRaw(t, e.s, http.MethodPut, "/v1/folders/"+f.ID+"/files/slow.bin", h)
	stop := make(chan struct{})
	start := time.Now()
	c.trickle(20*time.Millisecond, stop) // 50 bytes/s, far below 4096 per 500ms
	r := c.answer(t, 10*time.Second)
	close(stop)
	p := wantProblem(t, r, http.StatusRequestTimeout, api.ProblemTimeout)
	wantDetail(t, p, "stalled", "nothing was kept")
	if took := time.Since(start); took > window+3*time.Second {
		t.Errorf("cut off after %s, want about %s", took, window)
	}
	wantFolderEmpty(t, filepath.Join(e.host, f.ID))

	// 8 KiB every 100 ms: slow, but above the minimum rate.
	content := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	h.Set("Content-Length", fmt.Sprint(len(content)))
	c = dialRaw(t, e.s, http.MethodPut, "/v1/folders/"+f.ID+"/files/steady.bin", h)
	for off := 0; off < len(content); off += 8192 {
		if _, err := c.Write(content[off : off+8192]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the client's pace, not a wait for the server
	}
	wantStatus(t, c.answer(t, 10*time.Second), http.StatusCreated)
	if got := e.get(tok, f.ID, "steady.bin"); !bytes.Equal(got.Body, content) {
		t.Errorf("the steady upload stored %d bytes, want %d", len(got.Body), len(content))
	}
}

// wantFolderEmpty fails unless the directory holds nothing, temporary
// upload files included.
func wantFolderEmpty(t *testing.T, dir string) {
	t.Helper()
	testcluster.Eventually(t, 5*time.Second, func() error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		if len(ents) > 0 {
			return fmt.Errorf("the folder holds %s", ents[0].Name())
		}
		return nil
	})
}

// A signed upload is authenticated from its headers: a wrong signature is
// refused before a byte of the body is read (the answer comes while the
// client has sent none of it). A right signature over a content hash the
// body does not match is refused once the body has arrived, and nothing is
// kept; a signed upload without the content hash is refused too.
func TestSignedUploadsAreCheckedBeforeAndAfterTheirBody(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	tok, u := e.user("ann")
	f := e.createFolder(tok, map[string]any{"name": "box", "host": "local"})
	dir := filepath.Join(e.host, f.ID)
	path := "/v1/folders/" + f.ID + "/files/a.bin"
	body := []byte("the bytes that were signed")

	t.Run("a wrong signature is answered before the body is sent", func(t *testing.T) {
		req := signedRequest(t, http.MethodPut, e.url(path), u.Keypair, body, time.Now())
		ak, sig, _ := sign.ParseHeader(req.Header.Get("Authorization"))
		h := req.Header.Clone()
		h.Set("Authorization", sign.FormatHeader(ak, flipHex(sig, 3)))
		h.Set("Content-Length", fmt.Sprint(200<<20))
		c := dialRaw(t, e.s, http.MethodPut, path, h) // no byte of the 200 MB follows
		p := wantProblem(t, c.answer(t, 5*time.Second), http.StatusUnauthorized, api.ProblemUnauthorized)
		wantDetail(t, p, "wrong signature")
	})
	t.Run("a body other than the one signed keeps nothing", func(t *testing.T) {
		req := signedRequest(t, http.MethodPut, e.url(path), u.Keypair, body, time.Now())
		req.Body = readerOnly{strings.NewReader("tampered bytes, same length!"[:len(body)])}
		p := wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
		wantDetail(t, p, "is not the one signed", sign.ContentHash(body), "nothing was kept")
		wantFolderEmpty(t, dir)
	})
	t.Run("a signed upload without the content hash", func(t *testing.T) {
		req := signedRequest(t, http.MethodPut, e.url(path), u.Keypair, body, time.Now())
		req.Header.Del(sign.ContentHeader)
		p := wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
		wantDetail(t, p, "must carry "+sign.ContentHeader)
		wantFolderEmpty(t, dir)
	})
	t.Run("a malformed content hash", func(t *testing.T) {
		req := signedRequest(t, http.MethodPut, e.url(path), u.Keypair, body, time.Now())
		req.Header.Set(sign.ContentHeader, strings.ToUpper(sign.ContentHash(body)))
		wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
	})
	t.Run("a token upload whose body does not match its content hash", func(t *testing.T) {
		req := newRequest(t, http.MethodPut, e.url(path), []byte("damaged"))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set(sign.ContentHeader, sign.ContentHash(body))
		p := wantProblem(t, send(t, req), http.StatusBadRequest, api.ProblemValidation)
		wantDetail(t, p, "arrived damaged")
		wantFolderEmpty(t, dir)
	})
	t.Run("the signed body itself is stored", func(t *testing.T) {
		wantStatus(t, send(t, signedRequest(t, http.MethodPut, e.url(path), u.Keypair, body, time.Now())), http.StatusCreated)
		if got := e.get(tok, f.ID, "a.bin"); !bytes.Equal(got.Body, body) {
			t.Errorf("stored %q", got.Body)
		}
	})
}

// A JSON body that does not match its signed content hash changes
// nothing; an older client that signs the body without the header still
// works on small JSON routes.
func TestSignedJSONBodiesAreCheckedAgainstTheirHash(t *testing.T) {
	t.Parallel()
	a := startAdmin(t)
	super := testcluster.Login(t, a.s, testcluster.AdminEmail, testcluster.AdminPassword)
	admin := createUser(t, a.s, super, "boss@example.com", "boss", api.RoleAdmin)
	base := testcluster.URL(a.s)
	newUser := func(email string) []byte {
		return mustJSON(t, map[string]string{"email": email, "username": strings.Split(email, "@")[0], "password": testPassword})
	}

	signed := newUser("signed@example.com")
	req := newRequest(t, http.MethodPost, base+"/v1/users", newUser("swapped@example.com"))
	if err := sign.SignRequest(req, admin.Keypair.AccessKey, admin.Keypair.SecretKey, signed, time.Now()); err != nil {
		t.Fatal(err)
	}
	wantDetail(t, wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized), "is not the one signed")
	wantProblem(t, testcluster.Do(t, http.MethodGet, base+"/v1/users/swapped@example.com", super, nil), http.StatusNotFound, api.ProblemNotFound)

	old := signedRequest(t, http.MethodPost, base+"/v1/users", admin.Keypair, newUser("old-client@example.com"), time.Now())
	old.Header.Del(sign.ContentHeader)
	wantStatus(t, send(t, old), http.StatusCreated)
}

// More uploads at once than a user, or than the manager, may send are
// refused with 429 and Retry-After; once an upload ends its slot is free.
func TestUploadsBeyondTheLimitsAreRefused(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t, withLimits(httpapi.Limits{UploadsPerUser: 1, Uploads: 2}))
	annTok, _ := e.user("ann")
	bobTok, _ := e.user("bob")
	carlTok, _ := e.user("carl")
	folder := map[string]api.Folder{}
	for name, tok := range map[string]string{"ann": annTok, "bob": bobTok, "carl": carlTok} {
		folder[name] = e.createFolder(tok, map[string]any{"name": "box", "host": "local"})
	}
	// hold starts an upload that sends half its body and waits.
	hold := func(tok string, f api.Folder) *rawConn {
		c := dialRaw(t, e.s, http.MethodPut, "/v1/folders/"+f.ID+"/files/held.bin",
			http.Header{"Authorization": {"Bearer " + tok}, "Content-Length": {"200000"}})
		if _, err := c.Write(make([]byte, 100000)); err != nil {
			t.Fatal(err)
		}
		// Its temporary file, not any file: bob's folder already holds
		// the upload that fitted, and counting it would let the held one
		// still be on its way to its slot.
		testcluster.Eventually(t, 10*time.Second, func() error {
			ents, _ := os.ReadDir(filepath.Join(e.host, f.ID))
			for _, ent := range ents {
				if strings.HasPrefix(ent.Name(), ".berth-upload-") {
					return nil
				}
			}
			return fmt.Errorf("the held upload has not started writing")
		})
		return c
	}
	refused := func(r *testcluster.Response, detail string) {
		t.Helper()
		p := wantProblem(t, r, http.StatusTooManyRequests, api.ProblemRateLimited)
		wantDetail(t, p, detail)
		if r.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	annHeld := hold(annTok, folder["ann"])
	refused(e.put(annTok, folder["ann"].ID, "second.bin", "x"), "the most one user may")
	wantStatus(t, e.put(bobTok, folder["bob"].ID, "fits.bin", "x"), http.StatusCreated)
	bobHeld := hold(bobTok, folder["bob"])
	refused(e.put(carlTok, folder["carl"].ID, "third.bin", "x"), "the most it takes at once")

	annHeld.Close()
	bobHeld.Close()
	testcluster.Eventually(t, 10*time.Second, func() error {
		if r := e.put(annTok, folder["ann"].ID, "after.bin", "x"); r.Status != http.StatusCreated {
			return fmt.Errorf("upload after the held ones ended: %d %s", r.Status, r.Body)
		}
		return nil
	})
	for _, name := range []string{"ann", "bob"} {
		if got := e.get(map[string]string{"ann": annTok, "bob": bobTok}[name], folder[name].ID, "held.bin"); got.Status != http.StatusNotFound {
			t.Errorf("%s's cut-off upload was kept: %d", name, got.Status)
		}
	}
}

// A snapshot restore is a stream too: a keypair-signed one is
// authenticated from its headers and its body checked against the signed
// hash as it spools to the data directory; one that does not match
// restores nothing and leaves no spooled file, the one that does restores.
func TestASignedSnapshotRestoreIsCheckedAgainstItsHash(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	s := testcluster.StartFake(t, func(cfg *server.Config) { cfg.DataDir = dataDir }).Servers[0]
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	root := createUser(t, s, super, "root@example.com", "root", api.RoleSuperadmin)
	r := testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/operator/snapshot", super, nil)
	wantStatus(t, r, http.StatusOK)
	snap := r.Body
	createUser(t, s, super, "after@example.com", "after", api.RoleUser) // not in the snapshot
	url := testcluster.URL(s) + "/v1/operator/snapshot/restore"

	req := signedRequest(t, http.MethodPost, url, root.Keypair, snap, time.Now())
	damaged := bytes.Clone(snap)
	damaged[len(damaged)/2] ^= 0xff
	req.Body = readerOnly{strings.NewReader(string(damaged))}
	p := wantProblem(t, send(t, req), http.StatusUnauthorized, api.ProblemUnauthorized)
	wantDetail(t, p, "the snapshot is not the one signed", "nothing was kept")
	wantStatus(t, testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/users/after@example.com", super, nil), http.StatusOK)
	spooled, _ := filepath.Glob(filepath.Join(dataDir, ".restore-*"))
	if len(spooled) != 0 {
		t.Errorf("a refused restore left %v", spooled)
	}

	wantStatus(t, send(t, signedRequest(t, http.MethodPost, url, root.Keypair, snap, time.Now())), http.StatusNoContent)
	testcluster.Eventually(t, 10*time.Second, func() error {
		u, err := s.State().Read().User("after@example.com")
		if err != nil || u != nil {
			return fmt.Errorf("the user made after the snapshot is still there (%v)", err)
		}
		return nil
	})
}
