package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A manager refuses to start with a secrets key file it must not trust:
// readable by every local account (whoever reads it opens every registry
// password in a backup), or not a key.
func TestManagerRefusesABadSecretsKeyFileAtStart(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := strings.Repeat("0f", 32)
	for _, c := range []struct{ name, path, want string }{
		{"world-readable", file("open", key, 0o644), "can be read or written by every local account"},
		{"not hexadecimal", file("words", "CHANGE-ME", 0o600), "must hold 64 hexadecimal digits"},
		{"missing", filepath.Join(dir, "none"), "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run([]string{"-dev", "-data-dir", t.TempDir(), "-http-addr", "127.0.0.1:0", "-secrets-key-file", c.path},
				func(string) string { return "" }, &out, &out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want it to say %q", err, c.want)
			}
		})
	}
}
