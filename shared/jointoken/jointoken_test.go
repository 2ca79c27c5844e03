package jointoken

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckRefusesShortTokensAndTheExamples(t *testing.T) {
	for _, c := range []struct {
		token string
		weak  bool
	}{
		{"", true},
		{"0123456789", true},
		{strings.Repeat("x", 15), true},
		{"CHANGE-ME-agent-token", true},
		{"change-me-join-token", true},
		{strings.Repeat("x", 16), false},
		{"berth-agent-abcdefghijklmnopqrstuvwxyz", false},
	} {
		err := Check("-agent-token", c.token)
		if weak := errors.Is(err, ErrWeak); weak != c.weak {
			t.Errorf("Check(%q) = %v, want weak %v", c.token, err, c.weak)
		}
	}
}

func TestResolveTakesExactlyOneSource(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("  from-the-file-0123456789\n\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte("from-the-file-0123456789"), 0o604); err != nil {
		t.Fatal(err)
	}
	file := func(p string) Source { return Source{Name: "-token-file", Value: p, File: true} }
	env := Source{Name: "BERTH_AGENT_TOKEN", Value: "from-the-env-0123456789"}
	cases := []struct {
		name      string
		sources   []Source
		want, err string
	}{
		{"file", []Source{file(good), {Name: "BERTH_AGENT_TOKEN"}}, "from-the-file-0123456789", ""},
		{"environment", []Source{file(""), env}, "from-the-env-0123456789", ""},
		{"none", []Source{file(""), {Name: "BERTH_AGENT_TOKEN"}}, "", ""},
		{"both", []Source{file(good), env}, "", "given more than once (-token-file, BERTH_AGENT_TOKEN)"},
		{"missing file", []Source{file(filepath.Join(dir, "nope"))}, "", "-token-file: read token file"},
		{"empty file", []Source{file(empty)}, "", "is empty"},
		{"world-readable file", []Source{file(open)}, "", "can be read by every local account (mode 0604)"},
		{"a directory", []Source{file(dir)}, "", "is not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := Resolve(c.sources...)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
