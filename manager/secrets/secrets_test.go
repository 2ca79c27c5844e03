package secrets

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealedSecretsOpenOnlyWithTheirKeyAndContext(t *testing.T) {
	box, err := New(key(1))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := box.Seal(rand.Reader, []byte("hunter2-password"), "registry/lab")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("the sealed bytes hold the clear text")
	}
	got, err := box.Open(sealed, "registry/lab")
	if err != nil || string(got) != "hunter2-password" {
		t.Fatalf("open: %q, %v", got, err)
	}
	// Another record's context, another key, a flipped bit: none opens.
	if _, err := box.Open(sealed, "registry/other"); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened under another context: %v", err)
	}
	other, _ := New(key(2))
	if _, err := other.Open(sealed, "registry/lab"); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened with another key: %v", err)
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := box.Open(bad, "registry/lab"); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened altered bytes: %v", err)
	}
	if _, err := box.Open(sealed[:5], "registry/lab"); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened a short value: %v", err)
	}
	// Two seals of one secret differ (random nonces).
	again, _ := box.Seal(rand.Reader, []byte("hunter2-password"), "registry/lab")
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals are equal")
	}
	if box.KeyID() == other.KeyID() || len(box.KeyID()) != 16 {
		t.Fatalf("key ids %q %q", box.KeyID(), other.KeyID())
	}
}

func TestWithoutAKeyNothingIsSealed(t *testing.T) {
	var box *Box
	if _, err := box.Seal(rand.Reader, []byte("x"), "c"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("seal without key: %v", err)
	}
	if _, err := (&Box{}).Open([]byte("x"), "c"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("open without key: %v", err)
	}
	if box.HasKey() || box.KeyID() != "" {
		t.Fatal("a nil box has a key")
	}
}

func TestKeyFilesMustBePrivateAndWellFormed(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := strings.Repeat("ab", KeySize) + "\n"
	if _, err := Load(write("good", good, 0o600)); err != nil {
		t.Fatalf("good key file: %v", err)
	}
	// The service's group may read it (a root-owned file, mode 0640).
	if _, err := Load(write("group", good, 0o640)); err != nil {
		t.Fatalf("group-readable key file: %v", err)
	}
	for _, c := range []struct {
		path, want string
	}{
		{write("readable", good, 0o644), "chmod 600"},
		{write("others-write", good, 0o602), "chmod 600"},
		{write("short", "abcd", 0o600), "openssl rand -hex 32"},
		{write("nothex", strings.Repeat("zz", KeySize), 0o600), "hexadecimal"},
		{filepath.Join(dir, "missing"), "no such file"},
		{dir, "not a regular file"},
	} {
		_, err := Load(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%s) = %v, want an error saying %q", filepath.Base(c.path), err, c.want)
		}
	}
}
