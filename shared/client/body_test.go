package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/sign"
)

// A manager accepts a signature once, so a client whose clock does not move
// between two identical requests must still date them apart: each request
// is signed at least a nanosecond after the one before.
func TestIdenticalSignedRequestsCarryDifferentSignatures(t *testing.T) {
	frozen := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	var mu sync.Mutex
	var seen []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verifySignature(frozen)(t, r, body)
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{})
	}))
	defer srv.Close()
	c := newClient(t, Config{Addrs: []string{srv.URL}, AccessKey: testAccessKey, SecretKey: testSecretKey, Now: func() time.Time { return frozen }})
	for range 3 {
		if _, err := c.WhoAmI(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	sigs := map[string]bool{}
	for _, r := range seen {
		sigs[r.Header.Get("Authorization")] = true
		if d := r.Header.Get(sign.DateHeader); d[:19] != "2025-03-04T05:06:07" {
			t.Errorf("date %q strays from the clock", d)
		}
	}
	if len(seen) != 3 || len(sigs) != 3 {
		t.Fatalf("%d identical requests carried %d distinct signatures, want 3", len(seen), len(sigs))
	}
}

// An upload from a file is streamed: the signature covers the hash of the
// bytes from the file's offset to its end, and a retry on another manager
// sends those same bytes again in full.
func TestUploadStreamsAFileAndSendsItWholeAgainOnRetry(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	path := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(path, append([]byte("skip"), content...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var mu sync.Mutex
	var got [][]byte
	check := func(w http.ResponseWriter, r *http.Request) bool {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		verifySignature(now)(t, r, body)
		if r.ContentLength != int64(len(content)) {
			t.Errorf("Content-Length %d, want %d", r.ContentLength, len(content))
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, body)
		return len(got) == 1
	}
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if check(w, r) {
			noLeader(w)
			return
		}
		writeJSON(w, http.StatusCreated, api.FileEntry{Path: "data.bin"})
	}))
	defer first.Close()
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		check(w, r)
		writeJSON(w, http.StatusCreated, api.FileEntry{Path: "data.bin"})
	}))
	defer second.Close()
	c := newClient(t, Config{Addrs: []string{first.URL, second.URL}, AccessKey: testAccessKey, SecretKey: testSecretKey,
		Now: func() time.Time { return now }, RetryBackoff: -1})
	if _, err := c.Upload(context.Background(), "box", "data.bin", f); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d attempts reached a manager, want 2 (the first answered no-leader)", len(got))
	}
	for i, b := range got {
		if !bytes.Equal(b, content) {
			t.Errorf("attempt %d sent %d bytes, not the file's %d from its offset", i+1, len(b), len(content))
		}
	}
}

// A login-token request carries the content hash too, so the manager checks
// the body that arrives against the one sent.
func TestTokenRequestsCarryTheContentHash(t *testing.T) {
	var hdr, hash string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hdr, hash = r.Header.Get(sign.ContentHeader), sign.ContentHash(body)
		writeJSON(w, http.StatusCreated, map[string]any{})
	}))
	defer srv.Close()
	c := newClient(t, Config{Addrs: []string{srv.URL}, Token: "tok"})
	if _, err := c.CreateUser(context.Background(), map[string]string{"email": "a@b.c"}); err != nil {
		t.Fatal(err)
	}
	if hdr == "" || hdr != hash {
		t.Fatalf("%s %q, body hash %q", sign.ContentHeader, hdr, hash)
	}
}
