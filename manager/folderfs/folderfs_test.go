package folderfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCleanKeepsPathsInsideTheFolder(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "", want: "."},
		{in: "/", want: "."},
		{in: "a/b.txt", want: "a/b.txt"},
		{in: "a//b/./c", want: "a/b/c"},
		{in: "..", bad: true},
		{in: "a/../../b", bad: true},
		{in: "a/..", bad: true},
		{in: "/etc/passwd", bad: true},
		{in: "//etc", bad: true},
		{in: "a\\..\\b", bad: true},
		{in: "a\x00b", bad: true},
	}
	for _, tc := range tests {
		got, err := Clean(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrBadPath) {
				t.Errorf("Clean(%q) = %q, %v; want ErrBadPath", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Clean(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestWriteBoundsAndUsage(t *testing.T) {
	host := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(map[string]string{"h": host}, time.Minute, 0, func() time.Time { return now })
	if err := s.Create("h", "f1"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Write("h", "f1", "d/a", strings.NewReader("12345"), 5, nil); err != nil || n != 5 {
		t.Fatalf("write within the bound: %d, %v", n, err)
	}
	if _, err := s.Write("h", "f1", "d/b", strings.NewReader("123456"), 5, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write past the bound: %v, want ErrTooLarge", err)
	}
	ents, err := s.List("h", "f1", "d")
	if err != nil || len(ents) != 1 || ents[0].Name != "a" {
		t.Fatalf("after a refused write the directory holds %+v, %v; want only a", ents, err)
	}
	if u, err := s.Usage("h", "f1"); err != nil || u != 5 {
		t.Fatalf("usage %d, %v; want 5", u, err)
	}
	// Written behind the store's back: the cached figure stands until ttl.
	if err := os.WriteFile(filepath.Join(host, "f1", "x"), []byte("123"), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Usage("h", "f1"); u != 5 {
		t.Errorf("usage %d within the ttl, want the cached 5", u)
	}
	now = now.Add(2 * time.Minute)
	if u, _ := s.Usage("h", "f1"); u != 8 {
		t.Errorf("usage %d after the ttl, want 8", u)
	}
	if _, err := s.List("nope", "f1", ""); !errors.Is(err, ErrNoHost) {
		t.Errorf("unknown host: %v, want ErrNoHost", err)
	}
	if err := s.Delete("h", "f1", "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("h", "f1", "d/a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("open after delete: %v, want ErrNotFound", err)
	}
}
